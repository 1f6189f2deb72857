/** Runs the real CLI in a child process (tests of signals and exit codes). */
import { main } from '../../src/cli/index.js';

process.exitCode = await main(process.argv.slice(2));
