/**
 * Delivering inbound messages and requests to topic handlers, and answering
 * on the connection they came in on: acks for `received` (on receipt) and
 * `applied` (when the handler's promise settles), responses for requests.
 */
import type { Connection } from './connection.js';
import type { Envelope } from './envelope.js';
import type { JsonValue, MemberView, MessageHandler } from './types.js';

export interface DispatchPort {
  handler(topic: string): MessageHandler | undefined;
  /** Internal topics answered by the cluster layer itself, or undefined. */
  internal(topic: string, payload: JsonValue): Promise<JsonValue> | undefined;
  reply(conn: Connection, env: Envelope): void;
  error(code: string, message: string, peer: string): void;
}

type Msg = Extract<Envelope, { t: 'msg' }>;
type Req = Extract<Envelope, { t: 'req' }>;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function deliverMessage(port: DispatchPort, conn: Connection, from: MemberView, env: Msg): void {
  const payload = (env.p ?? null) as JsonValue;
  const h = port.handler(env.topic);
  if (!h) {
    if (env.ack !== 'none') port.reply(conn, { t: 'ack', id: env.id, ok: false, err: `no handler for topic ${env.topic}` });
    else port.error('COHORT_NO_HANDLER', `message on topic ${env.topic} from ${from.route} has no handler`, from.id);
    return;
  }
  if (env.ack === 'received') port.reply(conn, { t: 'ack', id: env.id, ok: true });
  const failed = (err: unknown): void => {
    const message = `handler of ${env.topic} failed: ${messageOf(err)}`;
    if (env.ack === 'applied') port.reply(conn, { t: 'ack', id: env.id, ok: false, err: message });
    else port.error('COHORT_HANDLER_FAILED', message, from.id);
  };
  let result: unknown;
  try {
    result = h(from, payload);
  } catch (err) {
    failed(err);
    return;
  }
  if (result instanceof Promise) {
    result.then(() => {
      if (env.ack === 'applied') port.reply(conn, { t: 'ack', id: env.id, ok: true });
    }, failed);
  } else if (env.ack === 'applied') port.reply(conn, { t: 'ack', id: env.id, ok: true });
}

export function answerRequest(port: DispatchPort, conn: Connection, from: MemberView, env: Req): void {
  const payload = (env.p ?? null) as JsonValue;
  const answer = (p: Promise<unknown>): void => {
    p.then(
      (v) => port.reply(conn, { t: 'res', id: env.id, ok: true, p: (v ?? null) as JsonValue }),
      (err) => port.reply(conn, { t: 'res', id: env.id, ok: false, err: messageOf(err) }),
    );
  };
  const internal = port.internal(env.topic, payload);
  if (internal) return answer(internal);
  const h = port.handler(env.topic);
  if (!h) return answer(Promise.reject(new Error(`no handler for topic ${env.topic}`)));
  try {
    answer(Promise.resolve(h(from, payload)));
  } catch (err) {
    answer(Promise.reject(err));
  }
}
