-- Argo CD health check for infergraph.io/v1 GraphDeployment.
-- Install it under argocd-cm's key resource.customizations.health.infergraph.io_GraphDeployment
-- (docs/kubernetes.md, "Argo CD"). Argo CD's Lua has only the base, table and os libraries,
-- so this script uses nothing else. It reads what the operator writes: status.state,
-- status.description, status.observedGeneration and the Ready condition.
--   Healthy      Available, Ready=True, and the status describes the current generation
--   Degraded     Failed (message: status.description)
--   Progressing  everything else: no status yet, a stale status, Creating, Ready not True
local function text(value)
  if value ~= nil and value ~= "" then
    return value
  end
  return nil
end

local hs = {status = "Progressing", message = "Waiting for the infergraph operator to report status"}
local status = obj.status
if status == nil then
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  hs.message = "The infergraph operator has not yet observed generation " .. tostring(generation)
  return hs
end

if status.state == "Failed" then
  hs.status = "Degraded"
  hs.message = text(status.description) or "The deployment failed"
  return hs
end

local ready = nil
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end

if status.state == "Available" and ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(status.description) or text(ready.message) or "Available"
  return hs
end

hs.message = (ready ~= nil and text(ready.message)) or text(status.description) or "Creating"
return hs
