import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/**
 * A file rewritten whole and atomically: each write goes to a temporary file
 * in the same folder, is fsync'd, then renamed over the path, so a reader (or
 * a restart after a crash) sees the old content or the new, never a torn one.
 * Writes are serialized in call order; a failed write does not stop later ones.
 */
export class AtomicFile {
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  /** Replaces the content; resolves when it is on disk. */
  write(text: string): Promise<void> {
    const next = this.chain.then(() => this.writeNow(text));
    this.chain = next.catch(() => {});
    return next;
  }

  private async writeNow(text: string): Promise<void> {
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const fh = await open(tmp, 'w', 0o644);
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}
