import { CodedError, type Failure, unavailable } from "../events/failure";

/** Raised when the database did not answer in time; the outcome of a write in flight is unknown. */
export class DatabaseTimeout extends CodedError {
  constructor(readonly afterMs: number) {
    super("unavailable", `the database did not answer within ${afterMs} ms`);
  }

  /** Worded for the caller: retry, with the same event ids. */
  override toFailure(): Failure {
    return unavailable();
  }
}

/** Settles with `work`, or rejects with DatabaseTimeout after `ms`. */
export function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DatabaseTimeout(ms)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
