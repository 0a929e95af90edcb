# Untrusted content: instruction-like text (possible prompt injection, flagged in gold) is never served.
package aquifer.context

import rego.v1

_trusted if input.resource.untrusted == false

resource_deny contains "untrusted_content" if not _trusted

explain("untrusted_content") := "the resource holds instruction-like text (or is not marked trusted) and is never served"
