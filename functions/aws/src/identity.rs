//! The caller's identity on AWS: API Gateway's JWT authorizer has verified the token
//! (issuer, audience, signature, expiry) and passes its claims in the request context.

use labelport_core::api::{AuthError, Authenticator};
use labelport_core::service::Caller;
use lambda_http::request::RequestContext;

/// Reads the caller's e-mail from the JWT claims API Gateway verified.
#[derive(Debug, Clone)]
pub struct ApiGatewayClaims {
    /// The claim that holds the e-mail (`email` for Cognito ID tokens and most IdPs).
    pub email_claim: String,
    /// The claim that says the address is verified (`email_verified`, the OpenID
    /// Connect standard claim; `"true"` as API Gateway passes it). `None` for an identity
    /// provider that only ever issues verified addresses and sends no such claim.
    pub verified_claim: Option<String>,
    /// The claim that names the OAuth client of a client-credentials token
    /// (`client_id`: Cognito's and RFC 9068's). A token without an e-mail whose `sub` is
    /// that client is a service calling as itself, and counts as the project's
    /// `services` entry with that client id. `None`: services are not accepted.
    pub service_claim: Option<String>,
}

impl Default for ApiGatewayClaims {
    fn default() -> Self {
        ApiGatewayClaims {
            email_claim: "email".into(),
            verified_claim: Some("email_verified".into()),
            service_claim: Some("client_id".into()),
        }
    }
}

impl Authenticator for ApiGatewayClaims {
    fn authenticate(&self, request: &http::request::Parts) -> Result<Caller, AuthError> {
        let Some(RequestContext::ApiGatewayV2(context)) =
            request.extensions.get::<RequestContext>()
        else {
            return Err(AuthError("no API Gateway request context".into()));
        };
        let claims = context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims)
            .ok_or_else(|| {
                AuthError("no JWT claims: is the route behind the JWT authorizer?".into())
            })?;
        let email = claims
            .get(&self.email_claim)
            .filter(|e| labelport_core::project::is_email(e));
        let Some(email) = email else {
            // A client-credentials token is the client's own: its subject is the client.
            // A person's access token names the app they signed in with as its client,
            // but its subject is the person, so it never passes for the app.
            let service = self
                .service_claim
                .as_ref()
                .and_then(|claim| claims.get(claim))
                .filter(|client| !client.is_empty() && claims.get("sub") == Some(*client));
            return match service {
                Some(client_id) => Ok(Caller::service(client_id.clone())),
                None => Err(AuthError(format!(
                    "the token has no `{}` claim with an e-mail address{}",
                    self.email_claim,
                    match &self.service_claim {
                        Some(claim) =>
                            format!(", and is not a service's (its `sub` is not its `{claim}`)"),
                        None => String::new(),
                    }
                ))),
            };
        };
        let email_verified = match &self.verified_claim {
            None => true,
            Some(claim) => claims.get(claim).is_some_and(|v| v == "true"),
        };
        Ok(Caller::person(email.clone(), email_verified))
    }
}
