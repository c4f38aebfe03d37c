/** The one method of an EIP-1193 provider Cloister relies on. */
export interface Eip1193Provider {
  request(args: { method: string; params?: readonly unknown[] | object }): Promise<unknown>;
}
