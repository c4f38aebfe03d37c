/**
 * Host side of the network tests: forks job-entry.ts, links its relay frames
 * to the real host relay (src/host/net-relay.ts) the way startEnclave does,
 * and records every byte the host carried and every frame it saw.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createRelayChannel, type RelayPort } from "../../../src/enclave/net/channel.ts";
import { enclaveRelayFrameSchema, type EnclaveRelayFrame, type HostRelayFrame } from "../../../src/enclave/net/frames.ts";
import { linkRelay } from "../../../src/enclave/net/relay-link.ts";
import { createNetRelay, type CarriedBytes, type NetRelayOptions } from "../../../src/host/net-relay.ts";

const ENTRY = fileURLToPath(new URL("./job-entry.ts", import.meta.url));

export interface JobError {
  name: string;
  message: string;
  code?: string;
  causeCode?: string;
  details?: Record<string, unknown>;
}

export interface TestEnclave {
  run<T>(job: string, params: unknown): Promise<T>;
  /** Every byte the relay carried, in order. */
  carried: CarriedBytes[];
  /** Every relay frame that crossed the IPC channel, both ways. */
  frames: unknown[];
  close(): Promise<void>;
}

export class JobFailed extends Error {
  readonly error: JobError;
  constructor(error: JobError) {
    super(`${error.name}${error.code ? ` ${error.code}` : ""}: ${error.message}`);
    this.error = error;
  }
}

export function startTestEnclave(relayOptions: Omit<NetRelayOptions, "onCarried"> = {}): TestEnclave {
  const carried: CarriedBytes[] = [];
  const frames: unknown[] = [];
  const child = fork(ENTRY, [], { serialization: "advanced", execArgv: ["--disable-warning=ExperimentalWarning"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const relay = linkRelay(child, createNetRelay({ privateDestinations: "allow", ...relayOptions, onCarried: (c) => carried.push(c) }), (_, frame) => frames.push(frame));
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.on("exit", () => {
    relay.close();
    for (const w of waiting.values()) w.reject(new Error("the test enclave exited"));
  });
  child.on("message", (raw: unknown) => {
    if (relay.route(raw)) return void frames.push(raw);
    const { id, result, error } = raw as { id: number; result?: unknown; error?: JobError };
    const w = waiting.get(id);
    waiting.delete(id);
    if (error) w?.reject(new JobFailed(error));
    else w?.resolve(result);
  });
  return {
    carried,
    frames,
    run: <T>(job: string, params: unknown) =>
      new Promise<T>((resolve, reject) => {
        const id = nextId++;
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, job, params });
      }),
    async close() {
      if (child.connected) child.disconnect();
      await exited;
    },
  };
}

/** True if `needle` occurs in any carried chunk or across chunk boundaries of one stream direction. */
export function carriedContains(carried: CarriedBytes[], needle: string): boolean {
  const joined = new Map<string, Buffer[]>();
  for (const c of carried) {
    const key = `${c.stream}/${c.direction}`;
    joined.set(key, [...(joined.get(key) ?? []), Buffer.from(c.bytes)]);
  }
  return [...joined.values()].some((chunks) => Buffer.concat(chunks).includes(needle));
}

/** True if `needle` occurs in any relay frame's bytes. */
export function framesContain(frames: unknown[], needle: string): boolean {
  return frames.some((f) => {
    const bytes = (f as { bytes?: unknown }).bytes;
    return (bytes instanceof Uint8Array && Buffer.from(bytes).includes(needle)) || JSON.stringify(f, (_, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v)).includes(needle);
  });
}

export function carriedTotal(carried: CarriedBytes[], direction?: CarriedBytes["direction"]): number {
  return carried.filter((c) => !direction || c.direction === direction).reduce((n, c) => n + c.bytes.length, 0);
}

/** The enclave's channel linked to the real host relay in memory; `inject` sends any raw frame to the enclave as the host. */
export function wired(relayOptions: NetRelayOptions = { privateDestinations: "allow" }) {
  let toEnclave: (raw: unknown) => void = () => {};
  const sent: EnclaveRelayFrame[] = [];
  const received: HostRelayFrame[] = [];
  const relay = createNetRelay(relayOptions);
  const session = relay.attach((frame) => {
    received.push(frame);
    queueMicrotask(() => toEnclave(frame));
  });
  const port: RelayPort = {
    send: (frame) => {
      sent.push(frame);
      const checked = enclaveRelayFrameSchema.parse(frame);
      queueMicrotask(() => session.receive(checked));
    },
    onFrame: (listener) => (toEnclave = listener),
  };
  return { relay, channel: createRelayChannel(port), inject: (raw: unknown) => toEnclave(raw), sent, received, close: () => session.close() };
}
