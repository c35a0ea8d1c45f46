// postgres.mjs — a real PostgreSQL for the store's tests: Debian's server binaries
// (/usr/lib/postgresql/<version>/bin, installed by `scripts/deps.sh --test`), a cluster made by
// initdb in a temporary directory, listening on a unix socket in that directory and on a free
// loopback port, with a password for TCP logins (so the tests pass one the way a deployment
// does) and trust on the socket (for pg_dump and the tests' own psql). Stopped and removed by
// stop(). initdb and postgres refuse to run as root: as root (CI) they run as the `postgres`
// user the package creates, in a directory made theirs; otherwise as whoever runs the test.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync, readFileSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

// The newest installed server's bin directory, or null.
export function postgresBinDir() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], 'bin') : null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// The system user that owns the cluster when we are root, else null (run as ourselves).
function clusterUser() {
  if (process.getuid() !== 0) return null;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) throw new Error('running as root and there is no `postgres` user to run PostgreSQL as');
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  return { name: 'postgres', uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

// Starts a cluster with one database, `aigw`, owned by user `aigw` (password: .password).
// Returns { url (with the password), urlWithEnv(VAR) (the password as ${VAR}), urlWithEnvFor(VAR,
// db) (another database of the cluster), password, port, socketDir, dataDir, dump(db = 'aigw'),
// psql(sql, db), session(db), stop(), start(), restart() (a stop then a start on the same port),
// cleanup() }.
export async function startPostgres() {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (scripts/deps.sh --test)');
  const user = clusterUser();
  const dir = mkdtempSync(join(tmpdir(), 'aigw-pg-'));
  const dataDir = join(dir, 'data');
  const password = randomBytes(12).toString('hex');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, `${password}\n`);
  if (user) {
    chmodSync(dir, 0o700);
    spawnSync('chown', ['-R', `${user.uid}:${user.gid}`, dir]);
  }
  // As the cluster's owner; bounded in time like every step of a test.
  const run = (cmd, args, timeout = 60000) => {
    const full = join(bin, cmd);
    const r = user
      ? spawnSync('runuser', ['-u', user.name, '--', full, ...args], { encoding: 'utf8', timeout, cwd: dir })
      : spawnSync(full, args, { encoding: 'utf8', timeout, cwd: dir });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  run('initdb', ['-D', dataDir, '-U', 'aigw', `--pwfile=${pwfile}`, '--auth-local=trust',
    '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync']);
  rmSync(pwfile);
  const port = await freePort();
  const logFile = join(dir, 'postgres.log');
  const options = `-k ${dir} -p ${port} -h 127.0.0.1 -F -c fsync=off -c full_page_writes=off`;
  const start = () => run('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', options, '-w', '-t', '30', 'start']);
  const stop = () => run('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
  start();
  const psql = (sql, db = 'aigw') =>
    run('psql', ['-h', dir, '-p', String(port), '-U', 'aigw', '-d', db, '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql]);
  psql('CREATE DATABASE aigw', 'postgres');
  let stopped = false;
  const pg = {
    password, port, socketDir: dir, dataDir,
    url: `postgres://aigw:${password}@127.0.0.1:${port}/aigw`,
    urlWithEnv: (name) => `postgres://aigw:\${${name}}@127.0.0.1:${port}/aigw`,
    psql,
    // A database of the cluster (another the test made with psql: CREATE DATABASE …).
    urlWithEnvFor: (name, db) => `postgres://aigw:\${${name}}@127.0.0.1:${port}/${db}`,
    // The whole database as SQL text (pg_dump of the same version as the server).
    dump: (db = 'aigw') => run('pg_dump', ['-h', dir, '-p', String(port), '-U', 'aigw', db]),
    // Every file of the data directory that contains needle (WAL segments, tables, the log).
    filesHolding(needle) {
      const hits = [];
      const walk = (d) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          const p = join(d, e.name);
          if (e.isDirectory()) walk(p);
          else if (e.isFile() && statSync(p).size < 64 * 1024 * 1024 && readFileSync(p).includes(needle)) hits.push(p);
        }
      };
      walk(dataDir);
      return hits;
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    // A psql session of its own, kept open across a test's steps (a transaction holding a lock):
    // run(sql) sends statements and waits, at most ms, until they have run (their output, or
    // psql's error, is returned); end() leaves it (an open transaction is rolled back).
    session(db = 'aigw') {
      const args = ['-h', dir, '-p', String(port), '-U', 'aigw', '-d', db, '-v', 'ON_ERROR_STOP=1', '-At'];
      const full = join(bin, 'psql');
      const child = user
        ? spawn('runuser', ['-u', user.name, '--', full, ...args], { cwd: dir })
        : spawn(full, args, { cwd: dir });
      let out = '', n = 0;
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { out += d; });
      return {
        async run(sql, ms = 10000) {
          const marker = `session-step-${++n}`;
          const from = out.length;
          child.stdin.write(`${sql}\nSELECT '${marker}';\n`);
          const end = Date.now() + ms;
          while (Date.now() < end) {
            const at = out.indexOf(marker, from);
            if (at >= 0) return out.slice(from, at);
            if (child.exitCode !== null) break;
            await new Promise((r) => setTimeout(r, 20));
          }
          throw new Error(`psql session: ${sql} did not finish within ${ms} ms: ${out.slice(from)}`);
        },
        async end() {
          child.stdin.end();
          const end = Date.now() + 5000;
          while (child.exitCode === null && child.signalCode === null && Date.now() < end)
            await new Promise((r) => setTimeout(r, 20));
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        },
      };
    },
    stop() { stop(); stopped = true; },
    start() { start(); stopped = false; },
    async cleanup() {
      if (!stopped) { try { stop(); } catch { /* already down */ } }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return pg;
}
