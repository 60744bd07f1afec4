/**
 * Errors with stable codes. Every code is listed in docs/errors.md; when you
 * add one here, add it there.
 */
export class CohortError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'CohortError';
  }
}

/** Invalid configuration: names the file, the key path and what was expected. Exit status 2. */
export class ConfigError extends CohortError {
  readonly file: string | undefined;
  readonly issues: readonly string[];
  constructor(file: string | undefined, issues: readonly string[]) {
    super('COHORT_CONFIG_INVALID', `${file ?? '<command line>'}: invalid configuration\n  ${issues.join('\n  ')}`);
    this.file = file;
    this.issues = issues;
    this.name = 'ConfigError';
  }
}
