// loopback-only.cjs — preloaded into promptfoo (NODE_OPTIONS="--require …/loopback-only.cjs")
// so that it reaches 127.0.0.1 and nothing else: promptfoo 0.118 still sends a "telemetry
// disabled" event to its own hosts when PROMPTFOO_DISABLE_TELEMETRY=1 says no telemetry, and
// could reach its cloud or an update check. tests/e2e/promptfoo.test.mjs runs it so; README.md
// here shows how. Every TCP or TLS connection is opened through net.Socket.prototype.connect
// and every name resolved through dns.lookup: a connection to an address outside 127.0.0.0/8
// and ::1, or to a name other than localhost, is refused before any packet leaves (the caller
// sees an ECONNREFUSED error) and one line naming it is appended to the file AIGW_LOOPBACK_LOG
// names, when set. Unix sockets are local and pass. Patching the prototype every connection
// goes through, not a module's exports, means a module that kept `net.connect` from its load
// is held too. Rejected: an empty proxy in HTTPS_PROXY (promptfoo's fetch honours it, Node's
// own fetch and raw sockets do not).
'use strict';
const net = require('node:net');
const dns = require('node:dns');
const fs = require('node:fs');

const logFile = process.env.AIGW_LOOPBACK_LOG;

function isLoopback(host) {
  if (host === undefined || host === null || host === '' || host === 'localhost') return true;
  const h = String(host).replace(/^\[|\]$/g, '').toLowerCase();
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

function refuse(what) {
  if (logFile) {
    try { fs.appendFileSync(logFile, `${what}\n`); } catch { /* the refusal stands either way */ }
  }
  const err = new Error(`loopback-only: refused ${what}`);
  err.code = 'ECONNREFUSED';
  return err;
}

// connect(options[, cb]), connect(port[, host][, cb]), connect(path[, cb]), or the normalized
// [options, cb] array net.connect passes on.
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  let options = args[0];
  if (Array.isArray(options)) options = options[0];
  let host;
  if (options && typeof options === 'object') {
    if (options.path === undefined) host = options.host;
  } else if (typeof options === 'number' || (typeof options === 'string' && /^\d+$/.test(options))) {
    host = typeof args[1] === 'string' ? args[1] : undefined;
  }
  if (!isLoopback(host)) {
    const err = refuse(`connect ${host}`);
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return connect.apply(this, args);
};

const lookup = dns.lookup;
dns.lookup = function guardedLookup(hostname, options, callback) {
  if (!isLoopback(hostname)) {
    const cb = typeof options === 'function' ? options : callback;
    const err = refuse(`lookup ${hostname}`);
    process.nextTick(() => cb(err));
    return {};
  }
  return lookup.call(this, hostname, options, callback);
};
const promisesLookup = dns.promises.lookup;
dns.promises.lookup = function guardedPromisesLookup(hostname, options) {
  if (!isLoopback(hostname)) return Promise.reject(refuse(`lookup ${hostname}`));
  return promisesLookup.call(this, hostname, options);
};
