// The browser stand-in for npm `webgpu` (Dawn for Node), swapped in by web/build.mjs: in a page
// runtime/device.ts takes navigator.gpu and never calls this; if something did, it says why.
export function create(): never {
  throw new Error("npm 'webgpu' (Dawn) is Node-only; in a browser WebGPU comes from navigator.gpu");
}
export const globals: Record<string, unknown> = {};
