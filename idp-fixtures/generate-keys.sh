#!/usr/bin/env bash
# Regenerates the TEST-ONLY identity-provider key pairs, self-signed
# certificates and per-shape IdP metadata in this directory.
#
# Usage: idp-fixtures/generate-keys.sh   (from anywhere; needs the openssl CLI)
#
# Every file written here is public test material. Never use these keys for
# anything but tests and benchmarks.
set -euo pipefail

cd "$(dirname "$0")"

DAYS=36500 # the validator does not check certificate dates; keep them far away

gen_key_and_cert() {
  local name="$1" subject="$2"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$name.key.pem" 2>/dev/null
  openssl req -new -x509 -key "$name.key.pem" -out "$name.crt.pem" -days "$DAYS" \
    -sha256 -subj "$subject" 2>/dev/null
  # The DER form, as IdP admin consoles usually offer it for download.
  openssl x509 -in "$name.crt.pem" -outform DER -out "$name.crt.der"
  chmod 0644 "$name.key.pem" "$name.crt.pem" "$name.crt.der"
}

gen_key_and_cert idp-a "/O=provisor test fixtures/CN=test IdP signing key A (TEST ONLY)"
gen_key_and_cert idp-b "/O=provisor test fixtures/CN=test IdP signing key B (TEST ONLY)"
gen_key_and_cert attacker "/O=provisor test fixtures/CN=attacker key (TEST ONLY)"

# Base64 body of a PEM certificate on one line, as metadata carries it.
cert_b64() {
  grep -v -- '-----' "$1.crt.pem" | tr -d '\n'
}

CERT_A="$(cert_b64 idp-a)"
CERT_B="$(cert_b64 idp-b)"
CERT_ATTACKER="$(cert_b64 attacker)"

# Entity IDs and endpoints per shape. They must match the constants of the
# test IdP (src/saml/test_idp.rs).
OKTA_ENTITY="http://www.okta.com/exk1provisortest0a1"
OKTA_SSO="https://provisor-test.okta.example/app/provisor-test/exk1provisortest0a1/sso/saml"
ENTRA_TENANT="8d4b1f0e-3c2a-4e5f-9a6b-7c8d9e0f1a2b"
ENTRA_ENTITY="https://sts.windows.net/$ENTRA_TENANT/"
ENTRA_SSO="https://login.microsoftonline.example/$ENTRA_TENANT/saml2"
ADFS_ENTITY="http://adfs.provisor-test.example/adfs/services/trust"
ADFS_SSO="https://adfs.provisor-test.example/adfs/ls/"

# Okta: one signing certificate per app, no use attribute on the KeyDescriptor.
# Both keys are listed here to exercise certificate rollover.
cat > okta-metadata.xml <<XML
<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="$OKTA_ENTITY">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data>
          <ds:X509Certificate>$CERT_A</ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:KeyDescriptor>
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data>
          <ds:X509Certificate>$CERT_B</ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="$OKTA_SSO"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$OKTA_SSO"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
XML

# Entra ID: default namespace, a WS-Federation RoleDescriptor before the
# IDPSSODescriptor, signing certificates with use="signing".
cat > entra-metadata.xml <<XML
<?xml version="1.0" encoding="utf-8"?>
<EntityDescriptor ID="_4f1c2b3a-5d6e-4f70-8a9b-0c1d2e3f4a5b" entityID="$ENTRA_ENTITY" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
  <RoleDescriptor xsi:type="fed:SecurityTokenServiceType" protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706">
    <KeyDescriptor use="signing">
      <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
        <X509Data>
          <X509Certificate>$CERT_A</X509Certificate>
        </X509Data>
      </KeyInfo>
    </KeyDescriptor>
  </RoleDescriptor>
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing">
      <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
        <X509Data>
          <X509Certificate>$CERT_A</X509Certificate>
        </X509Data>
      </KeyInfo>
    </KeyDescriptor>
    <KeyDescriptor use="signing">
      <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
        <X509Data>
          <X509Certificate>$CERT_B</X509Certificate>
        </X509Data>
      </KeyInfo>
    </KeyDescriptor>
    <SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$ENTRA_SSO"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$ENTRA_SSO"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="$ENTRA_SSO"/>
  </IDPSSODescriptor>
</EntityDescriptor>
XML

# AD FS: signing and encryption KeyDescriptors side by side. The encryption
# one carries the attacker certificate on purpose: a metadata parser that
# trusts encryption keys for signatures would accept forged responses.
cat > adfs-metadata.xml <<XML
<?xml version="1.0" encoding="utf-8"?>
<EntityDescriptor ID="_9c0b1a2d-3e4f-4a5b-8c7d-6e5f4a3b2c1d" entityID="$ADFS_ENTITY" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
  <SPSSODescriptor WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="encryption">
      <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
        <X509Data>
          <X509Certificate>$CERT_ATTACKER</X509Certificate>
        </X509Data>
      </KeyInfo>
    </KeyDescriptor>
    <AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://adfs.provisor-test.example/adfs/ls/" index="0" isDefault="true"/>
  </SPSSODescriptor>
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="encryption">
      <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
        <X509Data>
          <X509Certificate>$CERT_ATTACKER</X509Certificate>
        </X509Data>
      </KeyInfo>
    </KeyDescriptor>
    <KeyDescriptor use="signing">
      <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
        <X509Data>
          <X509Certificate>$CERT_A</X509Certificate>
        </X509Data>
      </KeyInfo>
    </KeyDescriptor>
    <KeyDescriptor use="signing">
      <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
        <X509Data>
          <X509Certificate>$CERT_B</X509Certificate>
        </X509Data>
      </KeyInfo>
    </KeyDescriptor>
    <NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</NameIDFormat>
    <NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</NameIDFormat>
    <NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</NameIDFormat>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$ADFS_SSO"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="$ADFS_SSO"/>
  </IDPSSODescriptor>
</EntityDescriptor>
XML

echo "regenerated keys, certificates and metadata in $(pwd)"
