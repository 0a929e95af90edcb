# METADATA
# title: Untrusted content
# description: Instruction-like text (possible prompt injection, flagged in gold) is never served.
package aquifer.context

import rego.v1

resource_deny contains "untrusted_content" if not input.resource.untrusted == false

explain("untrusted_content") := "the resource holds instruction-like text (or is not marked trusted) and is never served"
