/** The last block whose events the node has fully handled, persisted so a restart resumes there. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export class Checkpoint {
  readonly #path: string;
  #block: bigint;

  constructor(path: string, initial: bigint) {
    this.#path = path;
    this.#block = initial;
    try {
      const saved = JSON.parse(readFileSync(path, "utf8")) as { block: string };
      this.#block = BigInt(saved.block);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`checkpoint ${path} is unreadable: ${(error as Error).message}; delete it to rescan from the deployment block`);
    }
  }

  /** The file it is saved in. */
  get path(): string {
    return this.#path;
  }

  get block(): bigint {
    return this.#block;
  }

  save(block: bigint): void {
    this.#block = block;
    mkdirSync(dirname(this.#path), { recursive: true });
    const tmp = `${this.#path}.tmp`;
    writeFileSync(tmp, JSON.stringify({ block: block.toString() }));
    renameSync(tmp, this.#path);
  }
}
