// Preloaded into the program's Node.js process (Pulumi.yaml: nodeargs --require), before Pulumi's runner loads its
// SDK: Node's on-disk cache of V8's compiled code for every module loaded, in .build/node-compile-cache. The SDK alone
// loads TypeScript's compiler (9 MB of JavaScript) and npm's arborist, 1.5 to 3 s of each run on the lab's 2 cores
// when compiled afresh; Node checks each entry against the file's content and its own version.
"use strict";
require("node:module").enableCompileCache(require("node:path").join(__dirname, ".build", "node-compile-cache"));
