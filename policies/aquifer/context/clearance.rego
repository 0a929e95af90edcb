# Clearance: an agent sees nothing classified above its clearance.
package aquifer.context

import rego.v1

_within_clearance if _rank(_agent.clearance) >= _rank(input.resource.classification)

resource_deny contains "clearance_below_classification" if not _within_clearance

explain("clearance_below_classification") := concat("", [
	"agent ", _agent_id, " is cleared for ", _agent.clearance, " data; this resource is ", _level,
])
