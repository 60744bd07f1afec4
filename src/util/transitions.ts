/**
 * Guarded state transitions (grpc-js's `transitionToState(allowedFrom, to)`):
 * a state machine names, for each move, the states it may start from; a move
 * from anywhere else is refused (returns false) instead of silently
 * overwriting the state. Pure; the caller emits one structured event per
 * change it makes.
 */

/** A move is allowed when `from` is listed (an empty list: from anywhere). */
export function mayMove<S>(from: S, allowedFrom: readonly S[]): boolean {
  return allowedFrom.length === 0 || allowedFrom.includes(from);
}

/** One change of a state or a setting, as every transition event carries it. */
export interface StateChange<S> {
  readonly from: S;
  readonly to: S;
}
