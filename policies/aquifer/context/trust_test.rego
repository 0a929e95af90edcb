package aquifer.context_test

import rego.v1

import data.aquifer.context

as_support_with(overrides) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as resource("docs", overrides)
}

test_trusted_served if {
	d := as_support_with({"untrusted": false})
	d.allow
}

test_untrusted_denied if {
	d := as_support_with({"untrusted": true})
	d.reasons == ["untrusted_content"]
}

test_unmarked_trust_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as object.remove(resource("docs", {}), ["untrusted"])
	d.reasons == ["untrusted_content"]
}

test_trust_flag_must_be_the_boolean_false if {
	d := as_support_with({"untrusted": "false"})
	d.reasons == ["untrusted_content"]
}
