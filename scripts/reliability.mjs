#!/usr/bin/env node
// Runs the fault, abuse, security and property tests against the real Docker engine and
// Redis, and writes RELIABILITY.md: one row per scenario, what was checked, the result and
// the figures of this run. Usage: npm run reliability (needs dockerd and redis-server, as
// bash .ci/run or scripts/setup.sh start them).
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

const FILES = [
  'test/faults', 'test/abuse', 'test/property', 'test/e2e/abuse.test.ts', 'test/e2e/app.test.ts',
  'test/integration/docker-session.test.ts', 'test/integration/queue.test.ts',
  'test/e2e/up.test.ts', 'test/core/session.test.ts', 'test/core/dispatcher.test.ts', 'test/core/log-scan.test.ts',
  'test/core/prompt.test.ts', 'test/core/issue-address.test.ts', 'test/core/text.test.ts', 'test/core/session-store.test.ts', 'test/core/production-image.test.ts',
  'test/core/container-spec.test.ts', 'test/core/pod-config.test.ts', 'test/core/stream-json.test.ts', 'test/cli/render.test.ts', 'test/cli/run-cli.test.ts',
  'test/github/status-comment.test.ts', 'test/github/status-reporter.test.ts', 'test/core/redact.test.ts', 'test/github/triggers.test.ts', 'test/github/webhook-receiver.test.ts',
  'test/real-claude/session.test.ts',
  'test/e2e/session-page.test.ts', 'test/integration/session-feed.test.ts', 'test/web/session-page.test.ts', 'test/web/feed-writer.test.ts',
  'test/e2e/flood.test.ts', 'test/web/connection-limits.test.ts', 'test/e2e/metrics.test.ts', 'test/config.test.ts',
  'test/github/sanitize.test.ts', 'test/github/commands.test.ts', 'test/github/status-render.test.ts',
  'test/setup/setup-server.test.ts', 'test/setup/setup-pages.test.ts', 'test/setup/setup-render.test.ts', 'test/core/github-access.test.ts', 'test/integration/github-access.test.ts', 'test/integration/retire.test.ts',
  'test/core/session-log.test.ts', 'test/e2e/spend.test.ts', 'test/real-claude/spend.test.ts', 'test/integration/usage-limits.test.ts', 'test/core/agent-summary.test.ts', 'test/core/model-prices.test.ts', 'test/queue/usage-reporter.test.ts', 'test/integration/attach-end.test.ts', 'test/core/docker-runner.test.ts', 'test/integration/volumes-window.test.ts', 'test/github/markdown-safe.test.ts',
  'test/e2e/pull-requests.test.ts', 'test/github/pull-sessions.test.ts', 'test/github/review-prompt.test.ts', 'test/github/check-failures.test.ts', 'test/integration/pull-request-links.test.ts', 'test/github/app-subscriptions.test.ts',
];

/** [scenario, what was tried (and how many inputs), what was checked, file parts (| between several), test title pattern] */
const ROWS = [
  ['1. Worker SIGKILLed mid-run, restarted', 'one run; SIGKILL of the worker while the container prints', 'the job is taken up again and re-attaches; log = what the container printed (each line once, in order); one container; none left; one final comment', 'faults.test', /^1\./],
  ['1. (end to end, separate server and worker)', 'one issue through serve + worker; the worker SIGKILLed mid-run', 'same invariants through serve + worker processes', 'app.test', /a worker killed mid-run/],
  ['2. Worker killed while building', 'one build; the worker SIGKILLed during it', 'the build starts over; one container; one final comment; lines complete', 'faults.test', /^2a\./],
  ['2. Worker killed while stopping (container ignores SIGTERM)', 'one container that ignores SIGTERM; the worker SIGKILLed in its grace period', 'the stop still ends in SIGKILL; reported once; container removed; lines complete', 'faults.test', /^2b\./],
  ['2. Worker killed between two runs of one issue', 'two commands on one issue; the worker SIGKILLed between them', 'the second run runs once, the first is not repeated; two final comments', 'faults.test', /^2c\./],
  ['7. Container exits while no worker is attached', 'one run ending while its worker is down', 'the restarted worker reads the end from Docker\'s log; lines complete; one final comment', 'faults.test', /^2d\./],
  ['3. Redis restarted mid-run (AOF on)', 'two issues; redis-server restarted while both run', 'no job lost; server and worker reconnect by themselves; both issues finish intact', 'faults.test', /^3\./],
  ['4. Docker engine unavailable at job time', 'one job with the engine socket gone', 'a clear error in the status comment; the job does not hang', 'faults.test', /^4a\./],
  ['4. Docker engine stops answering mid-run', 'one run; the engine connection cut mid-output', 'a clear error at once; when it answers again the leftover container is removed; logged lines whole and in order', 'faults.test', /^4b\./],
  ['5. GitHub API answering 403 and 429 (retry-after) and 500s', 'comment writes failing 403, 429 and 500 in turn', 'the final comment still arrives, once', 'app.test', /403 and 429 secondary limits/],
  ['6. Same webhook redelivered 10 times', 'one delivery sent 10 times, some at once', 'one intake job; one run; one status comment', 'app.test', /a delivery sent 10 times/],
  ['6. Same webhook redelivered 10 times (queue level)', '10 adds of one intake job, 5 at once', 'one intake job in Redis', 'queue.test', /delivered 10 times/],
  ['6. Same delivery to two server processes at once', 'one delivery to two servers at the same moment', 'one run; one status comment', 'faults.test', /^6\./],
  ['7. Container that ignores SIGTERM', 'one container trapping SIGTERM; stop called twice', 'stop is idempotent; SIGKILL after the grace period (exit 137)', 'docker-session.test', /ignores SIGTERM/],
  ['7. Container printing 1 GB', '1 GB of numbered lines', 'every line arrives in order and is in the log file', 'output.test', /^7b\./],
  ['7. A 10 MB line with no newline; a line that never ends', 'a 10 MB line; a line left open', 'kept whole in 1 MiB pieces, all but the last marked partial', 'output.test', /^7c\./],
  ['8. Bad pod names, pods and pod.json at the terminal', 'each bad name, pod and pod.json field the test lists', 'exit code and a message naming the problem; nothing reaches Docker', 'cli-bad-input.test', /./],
  ['9. Bad webhooks and commands (signatures, missing fields, PRs, non-collaborators, bots, the app, 1 MB comments, code blocks, quotes, hidden carriers)', 'one delivery per case the test lists', 'rejected, ignored quietly, or one clear reply, as each deserves; the server keeps serving', 'e2e/abuse.test', /^(?!hidden|resume after)/],
  ['9. Prompt-injection carriers in the issue', 'one issue body with 7 carriers', 'hidden HTML, bidi, zero-width characters and image alt text never reach the agent', 'e2e/abuse.test', /^hidden HTML/],
  ['10. /cldpd resume after /cldpd stop, twice at once', 'a stop, then two resumes at once', 'the session continues; the two resumes run one after the other, each reported once', 'e2e/abuse.test', /^resume after stop/],
  ['11. Secrets injected through env / inheritEnv', 'a container printing every injected value', 'absent from every request to GitHub and from the server and worker logs, even when the container prints them', 'app.test', /never shows the values of env/],
  ['12. Container limits and no-new-privileges', 'one container, its HostConfig read back', 'Init, memory, CPU, pids limits and no-new-privileges on the container', 'docker-session.test', /limits, an init and no-new-privileges/],
  ['12. The server never opens the Docker socket', 'a canary socket as the server\'s DOCKER_HOST for a whole run', 'the server\'s DOCKER_HOST is a canary socket that saw no connection during the end-to-end run', 'app.test', /never opens the Docker socket/],
  ['Property tests', 'generated inputs, thousands per property', 'thousands of generated inputs per property: no throw; invariants (no hidden carrier survives sanitising, commands never fire from code or quotes, pieces independent of chunking, comment < 65,536 chars with no injected secret)', 'property', /./],
  // What an attacker, a race and a crash do (see the threat model below).
  ['H1. Memory exhaustion before the signature check', 'a 60 MB body declared, one streamed without a length, 6 bodies of 24 MB at once, 6 stalled ones; a genuine delivery meanwhile', 'refused (413) before being read whole; large unverified bodies held at once are capped (503); a genuine small delivery still accepted; the server keeps serving', 'e2e/abuse.test|webhook-receiver.test', /^memory:/],
  ['H2. The app edits other people\'s comments', '3 reader comments carrying the next status markers, then a resume', 'those comments are never edited; the app posts its own status comment', 'e2e/abuse.test', /^marker:/],
  ['H3. Replay of a signed body under a new delivery id', 'one label delivery, then the same body 3 times with new delivery ids', 'one run, one comment; nothing written for the replays', 'e2e/abuse.test', /^replay:/],
  ['H3. Replay of an old event', 'a command in a comment written over 7 days ago, a label on an issue last updated over 7 days ago; each also fresh', 'the old ones are ignored with a warning, the fresh ones queued', 'github/triggers.test', /^replay:/],
  ['H4. Raw tool output in comments', 'the real Claude Code CLI reading a file that holds password=…', 'the tool output is in the log and in no status comment', 'real-claude/session.test', /^starts:/],
  ['H5. Secrets in part', 'a 48-character secret at the end of 500 command lengths; secrets with a newline, tab, quote and backslash in 4 forms', 'no 8 characters of a secret reach a comment; every form is hidden', 'status-comment.test|redact.test|stream-json.test|render.test', /^secrets in part:/],
  ['H6. Half an emoji', 'emoji-heavy text cut at every offset; arbitrary Unicode (property); a fake GitHub that refuses ill-formed bodies with 422', 'every body is well-formed Unicode; no request refused in the abuse suite', 'text.test|status-comment.test|property|render.test|stream-json.test|run-cli.test|e2e/abuse.test', /^unicode:/],
  ['H7. /cldpd stop stops the wrong session', 'a running session and a second start queued on one issue, then /cldpd stop', 'the running container stops, the queued start is cancelled, the reply names the running session', 'e2e/abuse.test', /^stop:/],
  ['H8. A stop before the container exists', 'stops and timeouts during a slow launch, failing stops, concurrent stops, a stop during a re-attach', 'the container is stopped once it exists; a failed stop is tried again; the first reason is reported', 'session.test|dispatcher.test', /^stop before launch:/],
  ['H9. Strangers spend the write budget', '25 /cldpd commands from a reader in one burst', 'one reply', 'e2e/abuse.test', /^budget:/],
  ['H10. Recovered runs lose their summary', 'logs holding a result: a finished run, an unrecorded one, a re-attached one', 'the answer, cost and turns reach the final comment and the record', 'dispatcher.test|log-scan.test|session.test', /^recovered summary:/],
  ['H11. Final edits GitHub will never take', '403 (archived), 410 and 422 answers; a 403 rate limit', 'given up at once; the rate limit retried', 'status-reporter.test', /^permanent failure:/],
  ['H11. Containers: capabilities, network, log size', 'HostConfig read back; the capability mask inside; two containers on cldpd\'s network and on Docker\'s bridge; concurrent network creation', 'only the agent set of capabilities; containers cannot reach each other; one network; a bounded log', 'docker-session.test|container-spec.test|pod-config.test', /^hardening:/],
  ['H11. Session files world-readable', 'new files, and 0644 files in 0755 folders an older version wrote', '0600 files in 0700 folders', 'session-store.test', /^hardening:/],
  ['H11. Issue keys collide across owners', '240 issues (6 owners × 10 repositories × 4 numbers) and 5 pods; a record under an old key of either colliding issue', 'no two issues share a key; no two (pod, issue) pairs share volumes; an old record is found by its own issue only', 'issue-address.test|queue.test', /^collision:/],
  ['H11. An issue bound to its host forever', 'a start for an issue whose host is gone; one whose host is alive; a resume whose host is gone', 'the first runs on a live host and moves the issue; the others wait for their host', 'queue.test', /^host:/],
  ['H11. A transferred issue', 'a running session whose issue is transferred; /cldpd stop at the new place by a writer of the new repository only, then by a writer of both', 'the first is refused, the second stops the run; replies at the new place', 'e2e/abuse.test', /^transfer:/],
  ['H11. Host paths in issue comments', 'a label naming a pod that does not exist', 'the error shows neither the pods folder nor cldpd\'s home', 'e2e/abuse.test', /^paths:/],
  ['H12. A long-running process that does not exit', 'cldpd up SIGKILLed (its redis-server left running), restarted, then SIGTERM', 'the leftover redis-server is replaced; SIGTERM exits 0 and leaves no redis-server', 'e2e/up.test', /^exit:/],
  ['H13. Production image on an end-of-life Node', 'the Dockerfile\'s FROM lines against the Node release schedule', 'a Node LTS before its end of life', 'production-image.test', /./],
  ['H14. Unverified bodies in 1-byte chunks', '8 connections each streaming 1 MiB one byte per chunk (chunked encoding) at a server with a 128 MB heap; signed bodies in 100-byte and 64 KiB pieces', 'the server lives, its peak memory grows < 64 MiB, byte-sized bodies are refused (400), a signed delivery is accepted after; bodies in small pieces arrive whole', 'e2e/flood.test|webhook-receiver.test', /^chunks:/],
  ['H15. A comment built to make sanitising slow', '`/cldpd status` + `<a` × 32,700 + a 77-character re-forming nest of HTML comments, five at once with a genuine `/cldpd status`, through the real server and worker; 3,000 generated markup texts against the round-by-round reference; 3,000 against parseCommand', 'every delivery answered 200 within GitHub\'s 10 s and the genuine command replied to; the crafted comments queued as written and ignored at intake, nothing said; output identical to the old sanitiser\'s; the request path\'s look at the raw text never misses a command', 'e2e/abuse.test|github/triggers.test|github/sanitize.test|github/commands.test', /^sanitize: /],
  ['H16. Slow connections turn deliveries away', '300 slow connections from one address (half unfinished heads, half webhook bodies that never come, reopened when closed) and 50 slow heads from the deliveries\' own address; then 10 signed deliveries', 'all 10 answered 200; per-address and total limits, the oldest idle connection closed for a newcomer, busy ones never', 'e2e/flood.test|connection-limits.test', /^connections:/],
  ['H17. A tool result over 1 MiB; a secret across the 1 MiB cut', 'a container writing to /proc/1/fd/1 a 1 MiB stream-json tool result and a 1 MiB plain line, each with an injected key across the cut; a 9 MiB tool result; a `{` line that is not JSON; the key 16, 1 and 0 characters before the cut; a re-attach inside a long line', 'no piece of the tool result is plain output or in any edit of the status comment; no 8 characters of the key in any request to GitHub; the key reaches one piece whole; the log keeps every byte', 'e2e/app.test|core/session.test', /^long lines:/],
  ['H18. Live Markdown slipped past the final-answer filter', 'a lazy continuation line, a 4-space indented paragraph in a list item, a backtick fence whose info string holds a backtick, each with `@user`, `@org/team`, `#12`, a remote image and `<div hidden>`; 2,000 generated nested documents (lists, quotes, open and closed fences, indentation, lazy lines)', 'rendered as GitHub does (marked, GFM) in Chromium: no request, no image, no hidden element, no mention or reference in prose; generated: no `<img`, only Markdown\'s own tags, no mention or reference outside code', 'status-render.test|markdown-safe.property.test', /^markdown bypass: /],
  ['H18. Markdown tables that fill in cells', 'a 19 KB session-page entry of 100-column table headers and one-character rows, also inside a quote; a 98 KB final answer of five such tables, and its end cut to 20,000 characters', 'the page renders it as plain text within a few times its size (was 7.36 MB of HTML); the answer is shown whole as a code block, never parsed, and its cut end stays code', 'web/session-page.test|github/markdown-safe.test', /^cell fill:/],
  ['H19. The live feed bounded in entries, not bytes', 'a pod printing 4,000 lines of 5,000 `<` through the real server and worker; a feed written before the bound; one entry larger than the whole bound', 'the stream holds at most CLDPD_LIVE_MAX_MB of JSON (Redis MEMORY USAGE within 1.5 times it), its head counts exactly what it holds; a page is at most 1 MiB of entries, shows the newest, counts those left out and points to cldpd logs', 'e2e/session-page.test|integration/session-feed.test|web/session-page.test', /^feed bytes:/],
  ['H20. The log bound against result-shaped lines', '200 result-shaped lines of 1 MB past a 1 MiB bound; 40 from a container; a 500 KB result crossing the bound; text of control characters; a log closed mid-run', 'the log stays within the bound + 1.25 MiB (1.00 MiB, against 381.5 MiB before); scanRun finds the last result and its end; every line logged or counted once', 'docker-session.test|session-log.test', /^log bound:/],
  ['H21. First-run setup over plain HTTP from another machine', 'the setup page, import form and key POST reached over the machine\'s LAN address; the same over loopback, with X-Forwarded-Proto https, and with CLDPD_SETUP_ALLOW_HTTP=1; a callback with a code GitHub calls used', 'no manifest, state or import token served over plain HTTP from afar; a posted key not saved; the page says ssh -L, HTTPS or the setting; loopback and https served; the allowed page warns; a code used by someone else says to delete the app, with its settings URL', 'setup/setup-server.test|setup/setup-pages.test|setup-render.test', /^(setup http:|render: setup-plain-http)/],
  ['H22. Run tokens outliving the run', 'runs with one token and with 4-second tokens refreshed twice or more, through the dispatcher on Docker and through the worker process; a failed and a hanging revocation', 'after the run every unexpired token it was given is revoked at GitHub and refused by the git server; the worker\'s own installation token untouched; a failed or hanging revocation is logged and never fails the run', 'core/github-access.test|integration/github-access.test|e2e/app.test', /^revoke:/],
  ['H23. Session ids colliding across issues', 'new ids from the queue and the terminal; an id claimed in Redis by another issue, and a record of the next random id already on the host; records and logs with 8-hex ids', 'ids have 16 hex digits; a taken id is never reused (the next one is claimed for its issue); the other record untouched; the claim goes at retirement; ps, logs and stop read 8-hex sessions', 'dispatcher.test|run-cli.test|e2e/app.test|retire.test', /^session id:/],
  ['H24. Metrics and readiness on the webhook port', 'GET /metrics, /readyz, /healthz on the webhook port; the server\'s and worker\'s metrics ports on 127.0.0.1 and on 127.0.0.2 with the worker\'s HOST=0.0.0.0', 'the webhook port answers /healthz only (404 for the others); the metrics ports answer on loopback only', 'e2e/metrics.test|config.test', /^metrics access:/],
  ['H24. The metrics port equal to the webhook port', '`cldpd serve` with PORT = CLDPD_METRICS_PORT', 'exits 1 before taking either port, and the log names both settings', 'e2e/metrics.test', /^metrics port:/],
  ['H25. A stopped run spends nothing', 'a fake agent printing 3 assistant lines with usage (2 of one message), then /cldpd stop, through the real server and worker; a run whose result comes after its estimate; the real Claude Code CLI stopped in its first tool call', 'the day\'s spend in Redis equals the estimate while the run goes and after the stop, for the repository and the person; the result replaces the estimate, never adds to it; each message counted once', 'e2e/spend.test|real-claude/spend.test|usage-limits.test|agent-summary.test|model-prices.test|stream-json.test|usage-reporter.test', /^stopped spend:/],
  ['H26. A secret split by whitespace', 'an injected key broken by a line break, CRLF and an indent, spaces between every character, an escaped \\n; in the agent\'s words and its result', 'hidden whole on "Latest:" and in the final answer; no 8 characters of it in any request to GitHub', 'e2e/app.test|redact.test|status-reporter.test', /^split secret:/],
  ['H26. The attach stream cut while the container runs', 'a container printing numbered lines; its attach connection closed, then reset, mid-run by a proxy in front of the Docker socket', 'every line once, in order; the run ends on the container\'s exit', 'attach-end.test|core/docker-runner.test', /^attach end:/],
  ['H26. gc or a stop between preparing volumes and starting the container', 'a start held inside that window; removeSessions and removeVolumes; a stop from a second Dispatcher', 'session, volumes and record kept and the run recorded; the stop is not lost and no container starts', 'volumes-window.test', /^volumes window:/],
  ['H26. A false warning at `cldpd pods`', 'root images for the example `hello`, for a pod with its own claude resume command, and for the default pod; no bash anywhere', '`hello` ok with no warning; the other two warned', 'cli/run-cli.test', /^pods warning:/],
  ['H26. The page without the final answer', 'a run whose answer is only in Claude Code\'s result (Markdown, a raw `<img onerror>`, a remote image); an error result; an answer equal to the last words', 'the page ends with the answer as safe Markdown (no img element, raw HTML as text), redacted and cut; an error labelled as such; never shown twice', 'e2e/session-page.test|web/feed-writer.test|web/session-page.test', /^page answer:/],
  ['P1. Commands on pull requests that are not the session\'s', 'a /cldpd resume on a pull request with another head, on a fork\'s whose branch is named cldpd/issue-<n>, a fork\'s review, a branch named after the pull request itself, an issue without a session', 'nothing queued, nothing written, the issue\'s command counter unchanged', 'e2e/pull-requests.test|pull-sessions.test|triggers.test', /^pull request: (a comment on another|no session|ignores)/],
  ['P2. A reader on the session\'s pull request', 'a reader\'s /cldpd resume comment; a reader\'s review without a command and with one', 'one refusal each, on the pull request; no run; a reader\'s review is never read through the API, and without a command in its own text says nothing', 'e2e/pull-requests.test', /^pull request: a comment on another/],
  ['P3. One review, two deliveries', 'the review\'s submitted delivery and its thread reply\'s, both carrying the command; two deliveries claiming one review at once', 'one resume with the whole review; the winning delivery retried keeps its claim', 'e2e/pull-requests.test|pull-request-links.test', /^(pull request: a review with two|review: two deliveries)/],
  ['P4. A hostile review', '100 line comments of 60,000 characters with 500-line hunks, hidden HTML, zero-width characters, backtick runs that would close a fence', 'the prompt within 100 KiB, what did not fit counted, hidden text gone, no fence closed early, each hunk its last 20 lines', 'review-prompt.test|check-failures.test', /^(review|checks):/],
  ['P5. Failing checks, fixed at most n times', 'twenty deliveries of failing checks on one commit at once; a second check suite on the same commit; the next commit after the allowance; a person\'s push', 'one fix per commit, at most fixChecks per pull request, none after a person pushed until the agent pushes again', 'e2e/pull-requests.test|pull-request-links.test', /^(pull request: (failing checks|a person)|race: twenty deliveries of failing|pull request: a person)/],
];

const THREATS = [
  '## Threat model',
  '',
  'Who can send cldpd what, what that can make it do, and the test that shows it cannot do more.',
  '',
  '| who | can send | can make cldpd do | cannot (test) |',
  '|---|---|---|---|',
  '| anyone on the internet | requests to the webhook port | answer 4xx, and /healthz; hold at most 100 MB of large unverified bodies at once, plus 1 MiB per connection however the body is cut up; keep at most 512 connections in all, and once 256 are held at most 32 per address (an IPv6 /64), the oldest idle one (or one still sending its head) closed for a newcomer; live session pages at most 100, 20 per address | reach Redis, parse a body or start anything without the webhook secret (H1, row 9 signature cases); replay a delivery they saw, e.g. on a smee.io channel (H3); exhaust memory with bodies in 1-byte pieces (H14); turn GitHub\'s deliveries away with slow connections (H16); read /metrics or /readyz (H24) |',
  '| a reader of the repository (or anyone who can comment) | comments, also with /cldpd commands and hidden markers; reviews and review comments on pull requests; pull requests from forks | one refusal per person and issue a day, at most 20 per installation an hour; one API read of a review on a session\'s pull request | start, resume, stop or read a session (row 9 non-collaborator cases, P2); reach a session from a fork\'s pull request or another pull request (P1); put more than 100 KiB or hidden text in a prompt through a review (P4); spend the write budget (H9); have the app edit their comments (H2); run commands from quotes, code or hidden HTML (row 9, property tests) |',
  '| a writer | labels and /cldpd commands on their repositories | start, resume and stop sessions of those issues, within the pods `.github/cldpd.yml` allows, and see their status comments | reach another repository\'s session or volumes (H11 issue keys, H11 transferred issue); read the host\'s paths or injected secrets in comments (H11 host paths, row 11, H5); stop another run than the issue\'s (H7) |',
  '| the agent in its container | anything on its stdout and stderr, files in its volumes, network traffic | fill its own status comment (redacted, shortened, well-formed) and its session log; use its limits (memory, CPU, pids, timeout); through its run\'s gateway, reach the hosts its pod lists, the issue\'s GitHub and the model provider (with the key the gateway adds); make refusals, counted on its status comment and page | show injected secrets, even in part (row 11, H5, H4); break a comment with ill-formed text (H6); escape its limits or gain privileges (row 12, H11 containers); reach another container on the host (H11 containers); flood the host\'s disk through Docker\'s log (H11 containers); reach an unlisted host, this host\'s services or another run\'s gateway, by proxy, by a direct connection or by a DNS lookup (E1, E2); read the model key or use its run\'s secret after the run (E3); flood its log or comment with refusals (E4) |',
  '| another pod on the host | the same as an agent | the same as an agent | reach this pod\'s containers (H11 containers) or its volumes (H11 issue keys; volumes are named per pod and issue) |',
  '| another local user of the host | reads of the file system | nothing: session logs and records are theirs to read no more | read session logs and records (H11 session files) |',
  '',
  'What redaction cannot stop. Every comment, page and log line that leaves the host is redacted by value: each injected secret and each run token is hidden whole, in part (8 characters or more), split across pieces of a long line, and split by whitespace or line breaks. That is all value-based redaction can do. An agent that holds a secret and prints it transformed (base64, reversed, one character per line, spelled out, encrypted) gets it past any filter, and so does one that sends it over the network or commits it to the repository. What stops that instead is the secret not being in the container, or being worth little there: a run\'s GitHub token is scoped to the issue\'s repository and the permissions the pod asks for, expires within the hour and is revoked when the run ends; the values a pod injects (`env`, `inheritEnv`) are the pod author\'s choice and are in the agent\'s reach for the whole run, so a pod should inject only what its work needs, and a model key in `inheritEnv` is a key the agent can read.',
  '',
  'What the gateway stops, and what it cannot. A gated pod\'s container (any pod without `"egress": "open"` or a `network` of its own) sits on a network of its run\'s own on which the host holds no address: it has no route to the internet, to this host\'s services or to other containers, and its DNS resolves no outside name, so neither a direct connection nor a lookup carries anything out. Its one way out is its run\'s gateway, which opens a connection only to a listed host (the CONNECT target, and for TLS the name in the client\'s hello; for plain HTTP the URL and its Host), resolves names itself, and holds the model key, which the container never sees (the run\'s secret in its endpoint dies with the run). It cannot stop what a listed host carries: an allowed host that takes uploads (a package registry, a paste site under a listed wildcard, GitHub itself through the run\'s token: a gist, an issue comment, a push) is a drop box for whatever the agent can read, so list only what the work needs, and narrow lists per repository in `.github/cldpd.yml`. It does not inspect what goes through an allowed TLS tunnel (no interception), does not bound how much goes through it, and trusts DNS for listed names (a listed name that resolves to an internal address is reached). Image builds run on Docker\'s build network, not behind the gateway; an open pod reaches what Docker gives it, and holds its key.',
  '',
  'Not covered: the host itself (root on the host, the Docker socket and Redis are trusted, and Redis must not be reachable from containers: cldpd\'s own Redis listens on a Unix socket only), an open pod\'s container reaching services the host exposes on its gateway address, and the agent\'s own work on the repository (what it writes there is reviewed as any contribution is).',
  '',
];

const out = '.reliability-results.json';
const started = Date.now();
const run = spawnSync('npx', ['vitest', 'run', ...FILES, '--reporter=default', '--reporter=json', `--outputFile.json=${out}`], {
  stdio: 'inherit', env: { ...process.env, CI: 'true' },
});
const seconds = Math.round((Date.now() - started) / 1000);
const report = JSON.parse(readFileSync(out, 'utf8'));

const tests = report.testResults.flatMap((file) => file.assertionResults.map((a) => ({ file: file.name, title: a.title, status: a.status, ms: a.duration ?? 0 })));
const version = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
};

const lines = [
  '# Reliability',
  '',
  'What the fault, abuse, security and property suites check, and how the last run went.',
  'The numbered scenarios run against real processes, a real Redis and a real Docker engine (the',
  'GitHub API is a local fake reached through GHE_HOST). The H rows (what an attacker, a race and a',
  'crash do) run there too where they can be shown from outside (e2e, docker-session, queue, up);',
  'the others are unit tests of the piece at fault. Regenerate with `npm run reliability`.',
  '',
  `Last run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB · Node ${process.version} · ${version('docker', ['version', '--format', 'Docker {{.Server.Version}}'])} · Redis ${/v=(\S+)/.exec(version('redis-server', ['--version']))?.[1] ?? 'unknown'}`,
  `Tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests + (report.numTodoTests ?? 0)} skipped, in ${seconds} s.`,
  '',
  '| scenario | what was tried (inputs) | what was checked | result | tests | time |',
  '|---|---|---|---|---|---|',
];
let unmatched = 0;
for (const [scenario, tried, checked, fileParts, pattern] of ROWS) {
  const mine = tests.filter((t) => fileParts.split('|').some((part) => t.file.includes(part)) && pattern.test(t.title));
  if (mine.length === 0) unmatched += 1;
  const failed = mine.filter((t) => t.status === 'failed').length;
  const passed = mine.filter((t) => t.status === 'passed').length;
  const result = mine.length === 0 ? 'not run' : failed > 0 ? `**FAILED** (${failed})` : passed === mine.length ? 'passed' : `${passed}/${mine.length} passed`;
  const ms = mine.reduce((sum, t) => sum + t.ms, 0);
  lines.push(`| ${scenario} | ${tried} | ${checked} | ${result} | ${mine.length} | ${(ms / 1000).toFixed(1)} s |`);
}
lines.push('', ...THREATS, 'Known limits, by design:', '',
  '- A resume that runs as an exec inside a still-running container (pods whose command takes the prompt in argv) cannot be re-attached after its worker dies (Docker keeps no log of an exec): its run ends with an error that says so and how to continue.',
  '- A worker that dies closes the running agent\'s input (the container\'s stdin is attached once): the agent finishes what it was given and its run ends there; resumes sent into it that it had not taken, and later ones, run as resumes of their own in a new container.',
  '- When the Docker engine stops answering mid-run, the run is reported failed at once; lines the container printed after that are not added to the session log (the run\'s end is already on record), and the container is stopped and removed when the engine answers again.',
  '');
writeFileSync('RELIABILITY.md', lines.join('\n'));
console.log(`RELIABILITY.md written: ${report.numPassedTests} passed, ${report.numFailedTests} failed${unmatched ? `, ${unmatched} rows matched no test` : ''}`);
process.exit(run.status === 0 && unmatched === 0 ? 0 : 1);
