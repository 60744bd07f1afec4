/**
 * Guarded state transitions (grpc-js's `transitionToState(allowedFrom, to)`):
 * a state changes only from one of the states the caller lists, and every
 * change emits exactly one structured event — to the machine's sink (a log
 * line, a listener) and on the `cohort:state` diagnostics channel
 * (node:diagnostics_channel; free when nobody subscribes).
 *
 *   const life = new StateMachine('cluster-node', NodeState.Created, (c) => log.info(c, `${c.from} -> ${c.to}`));
 *   life.transition([NodeState.Created], NodeState.Starting);
 */
import diagnostics from 'node:diagnostics_channel';
import { CohortError } from '../errors.js';

/** The one event of a state change. */
export interface StateChange<S extends string = string> {
  /** Which kind of object changed (e.g. `cluster-node`, `connection`, `node-runtime`). */
  readonly machine: string;
  /** Which one, when there are many (a route, a remote address). */
  readonly id?: string;
  readonly from: S;
  readonly to: S;
}

export type StateChangeSink<S extends string = string> = (change: StateChange<S>) => void;

/** Every state change of every machine, for tracing (subscribe with `diagnostics_channel.subscribe(STATE_CHANNEL, fn)`). */
export const STATE_CHANNEL = 'cohort:state';
const channel = diagnostics.channel(STATE_CHANNEL);

/** A transition the caller did not allow from the current state: a bug, not a runtime condition. */
export class IllegalTransitionError extends CohortError {
  constructor(readonly machine: string, readonly from: string, readonly to: string) {
    super('COHORT_ILLEGAL_TRANSITION', `${machine}: illegal transition ${from} -> ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

/**
 * Moves `current` to `to` if it is one of `allowedFrom` (throws
 * {@link IllegalTransitionError} otherwise) and emits the change; returns the new state.
 */
export function transition<S extends string>(machine: string, current: S, allowedFrom: readonly S[], to: S, emit?: StateChangeSink<S>, id?: string): S {
  if (!allowedFrom.includes(current)) throw new IllegalTransitionError(machine, current, to);
  const change: StateChange<S> = { machine, ...(id !== undefined ? { id } : {}), from: current, to };
  emit?.(change);
  if (channel.hasSubscribers) channel.publish(change);
  return to;
}

/** One object's state, changed only through {@link transition}. */
export class StateMachine<S extends string> {
  private current: S;

  constructor(
    readonly machine: string,
    initial: S,
    private readonly emit?: StateChangeSink<S>,
    /** Names this object among its kind in the events (a function: it may be known only later). */
    private readonly id?: () => string | undefined,
  ) {
    this.current = initial;
  }

  get state(): S {
    return this.current;
  }

  is(...states: readonly S[]): boolean {
    return states.includes(this.current);
  }

  /** Moves to `to` from one of `allowedFrom`; throws {@link IllegalTransitionError} from any other state. */
  transition(allowedFrom: readonly S[], to: S): void {
    this.current = transition(this.machine, this.current, allowedFrom, to, this.emit, this.id?.());
  }

  /** Like {@link transition}, but a state outside `allowedFrom` is left as it is (false, no event): for idempotent close paths. */
  tryTransition(allowedFrom: readonly S[], to: S): boolean {
    if (!allowedFrom.includes(this.current)) return false;
    this.transition(allowedFrom, to);
    return true;
  }
}

/**
 * Whether a move from `from` is allowed by `allowedFrom` (an empty list: from anywhere), for state holders
 * that keep their own field and emit their own richer event (the balancer's Member: health moves from a table).
 */
export function mayMove<S>(from: S, allowedFrom: readonly S[]): boolean {
  return allowedFrom.length === 0 || allowedFrom.includes(from);
}
