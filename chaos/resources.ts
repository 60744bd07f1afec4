/**
 * What a run must undo, newest first: processes (killed by PID), namespaces,
 * temp dirs. `release()` runs every cleanup once, even when one fails, so a
 * SIGINT in the middle of a run leaves nothing behind.
 */
export class Resources {
  private readonly stack: { name: string; fn: () => void | Promise<void> }[] = [];
  private releasing: Promise<string[]> | undefined;

  /** Registers a cleanup; returns a function that runs it now (once) and unregisters it. */
  add(name: string, fn: () => void | Promise<void>): () => Promise<void> {
    const entry = { name, fn };
    this.stack.push(entry);
    return async () => {
      const i = this.stack.indexOf(entry);
      if (i < 0) return;
      this.stack.splice(i, 1);
      await fn();
    };
  }

  /** Runs every registered cleanup, newest first; resolves with the failures' messages. Safe to call twice. */
  release(): Promise<string[]> {
    this.releasing ??= (async () => {
      const failures: string[] = [];
      while (this.stack.length > 0) {
        const { name, fn } = this.stack.pop()!;
        try {
          await fn();
        } catch (err) {
          failures.push(`${name}: ${(err as Error).message}`);
        }
      }
      return failures;
    })();
    return this.releasing;
  }
}
