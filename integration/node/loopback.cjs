// Preload (`node --require loopback.cjs …`) for peers that bind every interface and take a
// fixed port: the first listening socket binds 127.0.0.1 instead, on port 0 (the OS picks),
// and the port it got is written to $LOOPBACK_PORT_FILE so the harness can read it back.
"use strict";
const net = require("node:net");
const fs = require("node:fs");

const listen = net.Server.prototype.listen;
let done = false;
net.Server.prototype.listen = function (...args) {
  if (done) return listen.apply(this, args);
  done = true;
  const cb = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
  this.once("listening", () => {
    const file = process.env.LOOPBACK_PORT_FILE;
    if (file) {
      fs.writeFileSync(file + ".tmp", String(this.address().port));
      fs.renameSync(file + ".tmp", file);
    }
  });
  return cb ? listen.call(this, 0, "127.0.0.1", cb) : listen.call(this, 0, "127.0.0.1");
};
