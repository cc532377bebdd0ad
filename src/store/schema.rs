//! Diesel table definitions, shared by both backends. Kept by hand in step with
//! `migrations/{sqlite,postgres}`; `store::tests::schema_matches_migrations` checks it.

diesel::table! {
    accounts (id) {
        id -> Text,
        name -> Text,
        parent_id -> Nullable<Text>,
        is_master -> Bool,
        bulk_licensing -> Bool,
        billing -> Nullable<Text>,
        vanity_name -> Nullable<Text>,
        settings -> Text,
        phone_enabled -> Bool,
        bundled_licensing -> Bool,
        auto_phone_provisioning -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    domain_claims (account_id, domain) {
        account_id -> Text,
        domain -> Text,
        status -> Text,
        challenge -> Text,
        created_at -> Timestamp,
        verified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    license_pools (account_id, product) {
        account_id -> Text,
        product -> Text,
        available -> BigInt,
        used -> BigInt,
        delegated -> BigInt,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        account_id -> Text,
        name -> Text,
        name_lower -> Text,
        permissions -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    phone_sites (id) {
        id -> Text,
        account_id -> Text,
        name -> Text,
        name_lower -> Text,
        site_code -> Text,
        extension_length -> Integer,
        is_main -> Bool,
        allocation_seq -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        account_id -> Text,
        email -> Nullable<Text>,
        user_name -> Text,
        user_name_lower -> Text,
        external_id -> Nullable<Text>,
        display_name -> Nullable<Text>,
        display_name_lower -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        department -> Nullable<Text>,
        job_title -> Nullable<Text>,
        user_type -> Text,
        role -> Text,
        custom_role_id -> Nullable<Text>,
        status -> Text,
        addons -> Text,
        seats -> Text,
        scim -> Text,
        provisioning_issues -> Text,
        last_source -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        placed_by -> Nullable<Text>,
    }
}

diesel::table! {
    user_phones (user_id) {
        user_id -> Text,
        account_id -> Text,
        site_id -> Nullable<Text>,
        extension -> Nullable<BigInt>,
        long_extension -> Nullable<Text>,
        phone_number -> Nullable<Text>,
        calling_plan -> Nullable<Text>,
        calling_plan_bundled -> Bool,
        phone_roles -> Text,
        outbound_caller_id -> Nullable<Text>,
        sms_enabled -> Nullable<Bool>,
        phone_status -> Nullable<Text>,
        phone_package -> Nullable<Text>,
        user_template -> Nullable<Text>,
        allow_caller_id_change -> Nullable<Bool>,
    }
}

diesel::table! {
    user_emails (user_id, value_lower) {
        user_id -> Text,
        account_id -> Text,
        value_lower -> Text,
    }
}

diesel::table! {
    phone_numbers (number) {
        number -> Text,
        account_id -> Text,
        assigned_user_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    desk_phones (user_id, slot) {
        user_id -> Text,
        slot -> Integer,
        brand -> Nullable<Text>,
        model -> Nullable<Text>,
        mac_address -> Text,
        provision_template -> Nullable<Text>,
    }
}

diesel::table! {
    groups (id) {
        id -> Text,
        account_id -> Text,
        display_name -> Text,
        display_name_lower -> Text,
        external_id -> Nullable<Text>,
        scim -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        display -> Nullable<Text>,
    }
}

diesel::table! {
    membership_events (id) {
        id -> BigInt,
        account_id -> Text,
        group_id -> Text,
        user_id -> Text,
        change -> Text,
        source -> Text,
        created_at -> Timestamp,
        processed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    user_attributes (user_id) {
        user_id -> Text,
        attributes -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    platform_settings (key) {
        key -> Text,
        value -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    mapping_configs (account_id) {
        account_id -> Text,
        config -> Text,
        version -> BigInt,
        updated_at -> Timestamp,
        granted_from -> Nullable<Text>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        account_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        scope -> Text,
        token_hash -> Text,
        label -> Nullable<Text>,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        granted_from -> Nullable<Text>,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        relationship_id -> Nullable<Text>,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        user_id -> Text,
        account_id -> Text,
        token_hash -> Text,
        sent_count -> Integer,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        account_id -> Nullable<Text>,
        actor -> Text,
        source -> Text,
        action -> Text,
        target -> Nullable<Text>,
        detail -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> BigInt,
        account_id -> Nullable<Text>,
        recipient -> Text,
        subject -> Text,
        body -> Text,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        claimed_until -> Nullable<Timestamp>,
        claim_token -> Nullable<Text>,
        last_error -> Nullable<Text>,
        failed_at -> Nullable<Timestamp>,
        message_id -> Nullable<Text>,
    }
}

diesel::table! {
    sso_configs (account_id) {
        account_id -> Text,
        idp_entity_id -> Text,
        sso_url -> Nullable<Text>,
        sp_entity_id -> Nullable<Text>,
        clock_skew_seconds -> Integer,
        allow_idp_initiated -> Bool,
        jit_enabled -> Bool,
        allow_sha1 -> Bool,
        allowed_redirects -> Text,
        updated_at -> Timestamp,
        granted_from -> Nullable<Text>,
    }
}

diesel::table! {
    sso_certificates (id) {
        id -> Text,
        account_id -> Text,
        fingerprint -> Text,
        pem -> Text,
        not_after -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    saml_requests (id) {
        id -> Text,
        account_id -> Text,
        relay_state -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    saml_replay (account_id, assertion_id) {
        assertion_id -> Text,
        account_id -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        account_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    relationships (id) {
        id -> Text,
        partner_account_id -> Text,
        customer_account_id -> Text,
        name -> Text,
        status -> Text,
        initiated_by -> Text,
        contact_user_id -> Nullable<Text>,
        permissions -> Text,
        pending_permissions -> Nullable<Text>,
        expires_at -> Nullable<Timestamp>,
        auto_extend -> Bool,
        allow_delegates -> Bool,
        undisclosed -> Bool,
        created_at -> Timestamp,
        activated_at -> Nullable<Timestamp>,
        ended_at -> Nullable<Timestamp>,
        ended_by -> Nullable<Text>,
        updated_at -> Timestamp,
        version -> BigInt,
        last_synced_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    group_bindings (id) {
        id -> Text,
        relationship_id -> Text,
        group_id -> Text,
        permissions -> Text,
        auto_accept -> Bool,
        created_at -> Timestamp,
        last_synced_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sync_holds (id) {
        id -> Text,
        relationship_id -> Text,
        removals -> Text,
        reason -> Text,
        status -> Text,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
        decided_by -> Nullable<Text>,
    }
}

diesel::table! {
    relationship_warnings (relationship_id, expires_at, days_before) {
        relationship_id -> Text,
        expires_at -> Timestamp,
        days_before -> Integer,
        sent_at -> Timestamp,
    }
}

diesel::table! {
    delegates (relationship_id, user_id) {
        relationship_id -> Text,
        user_id -> Text,
        status -> Text,
        sources -> Text,
        added_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    delegate_codes (id) {
        id -> Text,
        relationship_id -> Text,
        user_id -> Text,
        code_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        failed_attempts -> Integer,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(users -> accounts (account_id));
diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(group_members -> users (user_id));
diesel::joinable!(license_pools -> accounts (account_id));
diesel::joinable!(user_emails -> users (user_id));
diesel::joinable!(user_phones -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    platform_settings,
    user_attributes,
    domain_claims,
    license_pools,
    roles,
    phone_sites,
    users,
    user_phones,
    user_emails,
    phone_numbers,
    desk_phones,
    groups,
    group_members,
    membership_events,
    mapping_configs,
    api_tokens,
    invitations,
    audit_log,
    mail_outbox,
    sso_configs,
    sso_certificates,
    saml_requests,
    saml_replay,
    sessions,
    relationships,
    relationship_warnings,
    delegates,
    delegate_codes,
    group_bindings,
    sync_holds,
);
