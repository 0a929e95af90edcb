"""The people behind the agents: verified user tokens (OIDC JWTs) become a :class:`User` the policy decides with.

- :mod:`aquifer.identity.user`: the :class:`User` a request acts for (issuer, subject, groups, attributes) and its
  ACL principals; what ``input.user`` holds;
- :mod:`aquifer.identity.verify`: :class:`UserVerifier`, token verification against the issuers of
  ``catalog/identity.yaml`` (OIDC discovery, JWKS with key rotation, fail closed when the IdP is unreachable);
- :mod:`aquifer.identity.devidp`: the development IdP ``aquifer up`` starts (refused in production).

Importing this package loads none of them; import the module you need.
"""
