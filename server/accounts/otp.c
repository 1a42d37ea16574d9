/* otp.c — one-time verification codes: making them and checking them
 * against what the database keeps.
 *
 * Stored form (verification_codes.code_hash, 48 bytes): a random 16-byte
 * salt, then BLAKE2b-256 keyed with that salt over
 * "parley.otp.v1" NUL phone NUL code. Why this and not a password hash: a
 * six-digit code has a million values, so no hash can stop someone who
 * holds the row from trying them all offline; only a slow one (Argon2)
 * would make that cost hours, but at a cost on every RequestCode and Verify
 * the event loop cannot pay. What protects a code is its 10-minute life and
 * the 5-attempt limit, enforced by the server. The hash keeps codes out of
 * plain sight of whoever reads the table, a dump, a replica or a log of
 * parameters; the salt makes equal codes look different and the phone in
 * the MAC ties a row to its number. The code itself never reaches
 * PostgreSQL. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "accounts/accounts_internal.h"

#define OTP_CONTEXT "parley.otp.v1"

void pl_otp_new(char code[PL_OTP_DIGITS + 1])
{
    uint32_t v = randombytes_uniform(1000000);
    snprintf(code, PL_OTP_DIGITS + 1, "%06u", (unsigned)v);
}

bool pl_otp_is_well_formed(const char *code)
{
    for (int i = 0; i < PL_OTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    return code[PL_OTP_DIGITS] == '\0';
}

static void otp_mac(const uint8_t salt[PL_OTP_SALT_BYTES], const char *phone, const char *code,
                    uint8_t mac[PL_OTP_MAC_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, salt, PL_OTP_SALT_BYTES, PL_OTP_MAC_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)OTP_CONTEXT, sizeof(OTP_CONTEXT)); /* with its NUL */
    crypto_generichash_update(&st, (const uint8_t *)phone, strlen(phone) + 1);
    crypto_generichash_update(&st, (const uint8_t *)code, PL_OTP_DIGITS);
    crypto_generichash_final(&st, mac, PL_OTP_MAC_BYTES);
    sodium_memzero(&st, sizeof(st));
}

void pl_otp_seal(const char *phone, const char *code, uint8_t out[PL_OTP_STORED_BYTES])
{
    randombytes_buf(out, PL_OTP_SALT_BYTES);
    otp_mac(out, phone, code, out + PL_OTP_SALT_BYTES);
}

bool pl_otp_matches(const char *phone, const char *code, const uint8_t *stored, size_t stored_len)
{
    if (stored_len != PL_OTP_STORED_BYTES || !pl_otp_is_well_formed(code))
        return false;
    uint8_t mac[PL_OTP_MAC_BYTES];
    otp_mac(stored, phone, code, mac);
    bool ok = sodium_memcmp(mac, stored + PL_OTP_SALT_BYTES, PL_OTP_MAC_BYTES) == 0;
    sodium_memzero(mac, sizeof(mac));
    return ok;
}
