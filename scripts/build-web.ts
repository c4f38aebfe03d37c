// `npm run build:web`: builds the dashboard (web/) into web/dist with Vite.
import { ensureDashboardBundle } from "../src/devnet/dashboard-bundle.ts";

const started = performance.now();
const dir = await ensureDashboardBundle({ force: true, onStep: (m) => console.error(m) });
console.error(`dashboard bundle in ${dir} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
