/**
 * Typed access to the few web-standard globals that every target runtime has (Node 20+,
 * browsers, Deno, Bun), without pulling in the DOM or Node type libraries.
 * Internal to @synod/log; other packages use the scheduler and binary helpers instead.
 */

interface TextEncoderLike {
  encode(s: string): Uint8Array;
}
interface TextDecoderLike {
  decode(b: Uint8Array): string;
}

interface WebGlobals {
  TextEncoder: new () => TextEncoderLike;
  TextDecoder: new (label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean }) => TextDecoderLike;
  performance?: { now(): number; timeOrigin?: number };
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setImmediate?: (fn: () => void) => unknown;
  crypto?: { getRandomValues(a: Uint32Array): Uint32Array };
}

/** The web-standard globals, typed. */
export const web = globalThis as unknown as WebGlobals;
