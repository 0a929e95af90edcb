# Served layers: only certified platinum is trusted context; analysts may also read gold, labelled uncertified.
package aquifer.context

import rego.v1

_served_layers contains "platinum"

_served_layers contains "gold" if "analyst" in _agent.roles

_layer_served if input.resource.layer in _served_layers

resource_deny contains "layer_not_served" if not _layer_served

explain("layer_not_served") := concat("", [
	"this resource's layer is not served to agent ", _agent_id,
	" (platinum is certified for every agent; gold only for analysts, labelled uncertified)",
])

obligation contains {"label": "uncertified"} if input.resource.layer == "gold"
