/** `cloister collab create|approve|run|status|runs` against a running network (--network / --account). Not built yet. */
import { UsageError } from "../errors.ts";

export function collabNetworkCommand(sub: string, _argv: string[]): Promise<number> {
  throw new UsageError(`'cloister collab ${sub}' against a running network is not built yet; 'cloister collab run <file>' runs a collaboration on an embedded network`);
}
