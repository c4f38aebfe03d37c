/** The one method of an EIP-1193 provider Cloister relies on. */
export interface Eip1193Provider {
  request(args: { method: string; params?: readonly unknown[] | object }): Promise<unknown>;
}

/** EIP-1193's "message" event; eth_subscribe notifications come as `{ type: "eth_subscription", data: { subscription, result } }`. */
export interface Eip1193Message {
  type: string;
  data: unknown;
}

/** A provider that delivers subscription notifications through EIP-1193's "message" event (EDR does). */
export interface Eip1193MessageEvents {
  on(event: "message", listener: (message: Eip1193Message) => void): unknown;
  removeListener(event: "message", listener: (message: Eip1193Message) => void): unknown;
}
