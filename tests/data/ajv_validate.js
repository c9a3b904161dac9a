const Ajv2020 = require("ajv/dist/2020"); const yaml = require("js-yaml"); const fs = require("fs");
const schema = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const ajv = new Ajv2020({allErrors: true, strict: false}); const validate = ajv.compile(schema);
for (const f of process.argv.slice(3)) { let data; try { data = yaml.load(fs.readFileSync(f, "utf8")); } catch (e) { console.log(f + "\tPARSE"); continue; }
  console.log(f + "\t" + (validate(data) ? "ok" : "invalid")); }
