// Types for wgsl-preprocessor (the package ships none and has no `main`, so it is imported by file).
declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  /** Template tag: `#if ${cond}` / `#elif ${cond}` / `#else` / `#endif` keep or drop WGSL text. */
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
