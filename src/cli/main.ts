/** Entry for running the CLI from source (tests, development): node --import tsx src/cli/main.ts */
import { holdReloads } from './reload-signal.js';

// As bin/glimpse.js: a reload during start is held, not fatal, so this comes before the rest loads.
holdReloads();
const { main } = await import('./index.js');
process.exitCode = await main(process.argv.slice(2));
