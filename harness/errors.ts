/**
 * Bad input from the user (an option, a file, a version that does not exist): printed as one
 * line, exit code 2, never a stack trace. Any layer may throw it; the CLI turns it into the exit.
 */
export class UsageError extends Error {}
