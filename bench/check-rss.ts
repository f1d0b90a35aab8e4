/** Child of bench/model.ts: runs `isoroot check FILE` in-process and prints its peak RSS. */
import { main } from '../harness/cli/main.ts';

const start = Date.now();
const code = await main(['check', process.argv[2]], () => {});
const rssKb = process.resourceUsage().maxRSS;
console.log(`rss=${rssKb} ms=${Date.now() - start} exit=${code}`);
process.exitCode = code;
