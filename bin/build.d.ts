/** Types of bin/build.js, for the tests that use it. */
export declare const ROOT: string;
export declare const DIST: string;
export declare function staleReason(outdir?: string): string | undefined;
export declare function build(opts?: { outdir?: string }): Promise<{ files: number; ms: number }>;
export declare function precompiledModule(file: string): Promise<string>;
export declare const PRECOMPILE: readonly string[];
