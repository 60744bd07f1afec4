/**
 * Virtual users for failover tests (in-process now; with real node
 * processes killed by SIGKILL once the cluster layer and the node runtime
 * exist). Each user increments its own session counter through a sticky
 * client that follows the route suffix of its cookie and fails over to
 * another live node on a connection error, as the balancer does. A reply
 * carrying a value ≤ the last acknowledged one means acknowledged
 * increments were lost.
 */
export interface TargetNode {
  readonly route: string;
  readonly url: string;
  alive(): boolean;
}

export interface UserReport {
  readonly user: number;
  readonly acknowledged: number;
  /** acknowledged increments that a later reply showed missing */
  readonly lost: number;
  readonly failovers: number;
  readonly errors: number;
  /** routes the user's cookie named, in order */
  readonly routes: readonly string[];
}

export class VirtualUser {
  cookie: string | undefined;
  acknowledged = 0;
  lost = 0;
  failovers = 0;
  errors = 0;
  readonly routes: string[] = [];

  constructor(
    readonly index: number,
    private readonly nodes: () => readonly TargetNode[],
    private readonly path = '/inc',
    private readonly cookieName = 'JSESSIONID',
  ) {}

  get route(): string | undefined {
    const v = this.cookie?.split('=')[1];
    const i = v?.indexOf('.') ?? -1;
    return i >= 0 ? v!.slice(i + 1) : undefined;
  }

  private pick(exclude: ReadonlySet<string>): TargetNode | undefined {
    const live = this.nodes().filter((n) => n.alive() && !exclude.has(n.route));
    return live.find((n) => n.route === this.route) ?? live[this.index % Math.max(1, live.length)];
  }

  /** One increment with failover; resolves when some node acknowledged it. */
  async step(): Promise<void> {
    const tried = new Set<string>();
    for (;;) {
      const n = this.pick(tried);
      if (!n) throw new Error(`user ${this.index}: no live node left`);
      if (tried.size > 0) this.failovers++;
      tried.add(n.route);
      let res: Response;
      try {
        res = await fetch(`${n.url}${this.path}`, { headers: this.cookie ? { cookie: this.cookie } : {}, signal: AbortSignal.timeout(10_000) });
      } catch {
        this.errors++;
        continue;
      }
      if (res.status !== 200) {
        this.errors++;
        await res.arrayBuffer();
        continue;
      }
      const set = res.headers.getSetCookie().find((c) => c.startsWith(`${this.cookieName}=`));
      if (set) {
        this.cookie = set.split(';')[0];
        const r = this.route;
        if (r && this.routes[this.routes.length - 1] !== r) this.routes.push(r);
      }
      const value = Number(await res.text());
      if (value <= this.acknowledged) this.lost += this.acknowledged + 1 - value;
      this.acknowledged = value;
      return;
    }
  }

  report(): UserReport {
    return { user: this.index, acknowledged: this.acknowledged, lost: this.lost, failovers: this.failovers, errors: this.errors, routes: this.routes };
  }
}

/** Runs `steps` increments for every user concurrently (each user sequentially). */
export async function runUsers(users: readonly VirtualUser[], steps: number, between?: (step: number) => Promise<void> | void): Promise<void> {
  for (let i = 0; i < steps; i++) {
    await Promise.all(users.map((u) => u.step()));
    await between?.(i);
  }
}
