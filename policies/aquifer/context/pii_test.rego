package aquifer.context_test

import rego.v1

import data.aquifer.context

with_pii(agent, purpose) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as agent
		with input.purpose as purpose
		with input.model as "local"
		with input.resource as resource("cases", {"pii_types": ["phone", "email", "phone"]})
}

test_pii_redacted_for_non_reader if {
	d := with_pii("boss", "customer_support")
	d.allow
	d.obligations.redact == ["email", "phone"]
}

test_pii_reader_for_pii_purpose_reads_unredacted if {
	d := with_pii("hr", "hr_casework")
	d.allow
	not d.obligations.redact
}

test_pii_reader_outside_pii_purpose_gets_redaction if {
	# boss is a pii_reader, but cases allows PII for hr_casework only
	d := with_pii("boss", "customer_support")
	d.obligations.redact == ["email", "phone"]
}

test_no_pii_no_redaction if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as resource("tickets", {})
	not d.obligations.redact
}

test_unknown_pii_types_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as object.remove(resource("tickets", {}), ["pii_types"])
	d.reasons == ["pii_unknown"]
}

test_pii_type_outside_the_vocabulary_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as resource("tickets", {"pii_types": ["email", "x\"y"]})
	d.reasons == ["pii_unknown"]
	d.obligations == {}
}

test_pii_types_not_a_list_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as resource("tickets", {"pii_types": "email"})
	d.reasons == ["pii_unknown"]
}
