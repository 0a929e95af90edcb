package aquifer.context_test

import rego.v1

import data.aquifer.context

as_analyst(res) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "analyst"
		with input.purpose as "financial_analysis"
		with input.model as "local"
		with input.resource as res
}

as_support(res) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as res
}

test_platinum_served if {
	d := as_support(resource("docs", {}))
	d.allow
}

test_gold_denied_to_non_analyst if {
	d := as_support(resource("docs", {"layer": "gold"}))
	d.reasons == ["layer_not_served"]
}

test_gold_served_to_analyst_marked_uncertified if {
	d := as_analyst(resource("finance", {"layer": "gold"}))
	d.allow
	d.obligations.label == "uncertified"
}

test_platinum_not_marked_uncertified if {
	d := as_analyst(resource("finance", {}))
	d.allow
	not d.obligations.label
}

test_silver_never_served if {
	d := as_analyst(resource("finance", {"layer": "silver"}))
	d.reasons == ["layer_not_served"]
}

test_missing_layer_denied if {
	d := as_support(object.remove(resource("docs", {}), ["layer"]))
	d.reasons == ["layer_not_served"]
}
