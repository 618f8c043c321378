// Validates custom resources with the typed models of @kubernetes-models/* (ajv, offline).
// stdin: a JSON list of objects; stdout: one line per object, "ok NAME" or "FAIL NAME why".
import { readFileSync } from "node:fs";

const MODULES = {
  "gateway.networking.k8s.io/v1": "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1",
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1",
  "networking.istio.io/v1beta1": "@kubernetes-models/istio/networking.istio.io/v1beta1",
};

const objects = JSON.parse(readFileSync(0, "utf8"));
for (const obj of objects) {
  const name = `${obj.kind}/${obj.metadata.name}`;
  try {
    const models = await import(MODULES[obj.apiVersion]);
    new models[obj.kind](obj).validate();
    console.log(`ok ${name}`);
  } catch (error) {
    console.log(`FAIL ${name} ${String(error.message).split("\n")[0]}`);
  }
}
