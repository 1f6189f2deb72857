/** Entry for running the CLI from source (tests, development): node --import tsx src/cli/main.ts */
import { main } from './index.js';

process.exitCode = await main(process.argv.slice(2));
