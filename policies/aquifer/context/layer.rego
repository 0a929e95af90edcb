# METADATA
# title: Served layers
# description: Only certified platinum is trusted context; analysts may also read gold, labelled uncertified.
package aquifer.context

import rego.v1

_served_layers contains "platinum"

_served_layers contains "gold" if "analyst" in _agent.roles

resource_deny contains "layer_not_served" if not input.resource.layer in _served_layers

explain("layer_not_served") := concat("", [
	"the ", _s(input.resource.layer), " layer is not served to agent ", _s(input.agent),
	" (platinum is certified for every agent; gold only for analysts, labelled uncertified)",
])

obligation contains {"label": "uncertified"} if input.resource.layer == "gold"
