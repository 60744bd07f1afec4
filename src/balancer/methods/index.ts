import type { LbMethod } from './method.js';
import { byrequests } from './byrequests.js';
import { bytraffic } from './bytraffic.js';
import { bybusyness } from './bybusyness.js';
import { bylatency } from './bylatency.js';

export type { LbMethod, LbContext } from './method.js';

/** The registry of balancing methods, owned by whoever creates it (no module-level mutation). */
export class MethodRegistry {
  private readonly methods = new Map<string, LbMethod>();
  constructor(initial: readonly LbMethod[] = [byrequests, bytraffic, bybusyness, bylatency]) {
    for (const m of initial) this.register(m);
  }
  register(method: LbMethod): void {
    this.methods.set(method.name, method);
  }
  get(name: string): LbMethod {
    const m = this.methods.get(name);
    if (!m) throw new Error(`unknown balancing method "${name}" (known: ${[...this.methods.keys()].join(', ')})`);
    return m;
  }
  names(): string[] {
    return [...this.methods.keys()];
  }
}

export { byrequests, bytraffic, bybusyness, bylatency };
