/**
 * The fleet's registers on disk (`<config>.fleet.json`, next to the manager's
 * state file): their stamps survive a restart, so a change made on a balancer
 * that restarted while its peers were down still outranks the older changes
 * those peers bring back when they return. Written atomically (temp file,
 * fsync, rename) after every change; read at start. Only the stamps matter
 * here — the settings themselves are re-applied from the manager's state file.
 */
import { readFile } from 'node:fs/promises';
import { AtomicFile } from '../util/atomic-file.js';
import { z } from 'zod';
import { entrySchema, type Entry } from './fleet-register.js';
import { FleetError } from './errors.js';

const fileSchema = z.strictObject({
  version: z.literal(1),
  highest: z.number().int().min(0),
  entries: z.array(entrySchema),
});

export class FleetStore {
  private readonly file: AtomicFile;

  constructor(readonly path: string) {
    this.file = new AtomicFile(path);
  }

  /** The saved registers; undefined when there is no file. A corrupt file is an error. */
  async load(): Promise<{ highest: number; entries: Entry[] } | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let parsed;
    try {
      parsed = fileSchema.safeParse(JSON.parse(text));
    } catch (err) {
      throw new FleetError('COHORT_FLEET_INVALID', `${this.path} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    if (!parsed.success) throw new FleetError('COHORT_FLEET_INVALID', `${this.path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return { highest: parsed.data.highest, entries: parsed.data.entries };
  }

  /** Saves (serialized with earlier saves). */
  save(highest: number, entries: readonly Entry[]): Promise<void> {
    return this.file.write(`${JSON.stringify({ version: 1, highest, entries })}\n`);
  }
}
