package aquifer.context_test

import rego.v1

import data.aquifer.context

as_support_on(dataset) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as resource(dataset, {})
}

test_dataset_purpose_allowed if {
	d := as_support_on("docs")
	d.allow
}

test_dataset_purpose_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.agent as "boss"
		with input.purpose as "marketing"
		with input.model as "local"
		with input.resource as resource("tickets", {})
	d.reasons == ["purpose_not_allowed_for_dataset"]
}

test_unknown_dataset_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as object.union(resource("docs", {}), {"dataset": "shadow"})
	d.reasons == ["unknown_dataset"]
}
