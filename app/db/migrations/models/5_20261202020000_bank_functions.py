from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


# Written by hand: functions only, the models are unchanged (MODELS_STATE is migration 4's).
# A coin movement in one round trip (app/db/bank_functions.py calls them). They do what the
# model code in app/domain/economy.py does, step for step, and the same tests check both:
# row locks in user-id order, the idempotency key, the remembered refusal, the conditional
# debit and credit, versions and ledger rows. A changed rule is a new version (_v2) in a new
# migration; these texts never change.
async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
CREATE OR REPLACE FUNCTION bank_transfer_v1(
    p_guild BIGINT, p_sender BIGINT, p_recipient BIGINT, p_amount BIGINT, p_key VARCHAR,
    p_max_balance BIGINT, p_lock_timeout_ms INT,
    OUT outcome TEXT, OUT sender_balance BIGINT, OUT recipient_balance BIGINT,
    OUT sender_version BIGINT, OUT recipient_version BIGINT, OUT needed BIGINT,
    OUT seen_guild BIGINT, OUT seen_sender BIGINT, OUT seen_recipient BIGINT,
    OUT seen_amount BIGINT)
LANGUAGE plpgsql AS $fn$
DECLARE
    s members%ROWTYPE;
    r members%ROWTYPE;
    m members%ROWTYPE;
BEGIN
    IF p_lock_timeout_ms > 0 THEN
        PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
    END IF;
    FOR m IN SELECT * FROM members WHERE guild_id = p_guild
            AND user_id IN (p_sender, p_recipient) ORDER BY user_id FOR UPDATE LOOP
        IF m.user_id = p_sender THEN s := m; ELSE r := m; END IF;
    END LOOP;
    SELECT l.guild_id, l.user_id, l.counterparty_id, l.amount, l.balance_after
        INTO seen_guild, seen_sender, seen_recipient, seen_amount, sender_balance
        FROM ledger l WHERE l.idempotency_key = p_key || ':out';
    IF FOUND THEN
        SELECT l.balance_after INTO recipient_balance
            FROM ledger l WHERE l.idempotency_key = p_key || ':in';
        outcome := 'replayed';
        RETURN;
    END IF;
    SELECT f.balance, f.needed INTO sender_balance, needed
        FROM refusals f WHERE f.idempotency_key = p_key;
    IF FOUND THEN
        outcome := 'refused';
        RETURN;
    END IF;
    IF s.id IS NULL OR s.coins < p_amount THEN
        -- Remembered under the rows' locks, so that a replay refuses again.
        sender_balance := coalesce(s.coins, 0);
        needed := p_amount;
        INSERT INTO refusals (idempotency_key, guild_id, balance, needed, created_at)
            VALUES (p_key, p_guild, sender_balance, p_amount, now());
        outcome := 'refused';
        RETURN;
    END IF;
    IF r.id IS NULL THEN
        INSERT INTO members (guild_id, user_id, display_name, coins, xp, level, version,
                first_seen)
            VALUES (p_guild, p_recipient, '', 0, 0, 0, 0, now()) ON CONFLICT DO NOTHING;
        SELECT * INTO r FROM members WHERE guild_id = p_guild AND user_id = p_recipient
            FOR UPDATE;
    END IF;
    IF r.coins > p_max_balance - p_amount THEN
        outcome := 'limit';
        RETURN;
    END IF;
    UPDATE members SET coins = coins - p_amount, version = version + 1
        WHERE id = s.id AND coins >= p_amount
        RETURNING coins, version INTO sender_balance, sender_version;
    UPDATE members SET coins = coins + p_amount, version = version + 1
        WHERE id = r.id AND coins <= p_max_balance - p_amount
        RETURNING coins, version INTO recipient_balance, recipient_version;
    IF sender_version IS NULL OR recipient_version IS NULL THEN
        RAISE EXCEPTION 'bank_transfer_v1: a locked row changed under its lock';
    END IF;
    INSERT INTO ledger (guild_id, user_id, kind, amount, balance_after, actor_id,
            counterparty_id, reason, idempotency_key, created_at)
        VALUES (p_guild, p_sender, 'transfer_out', p_amount, sender_balance, p_sender,
                p_recipient, NULL, p_key || ':out', now()),
               (p_guild, p_recipient, 'transfer_in', p_amount, recipient_balance, p_sender,
                p_sender, NULL, p_key || ':in', now());
    outcome := 'done';
END
$fn$;

CREATE OR REPLACE FUNCTION bank_move_v1(
    p_guild BIGINT, p_user BIGINT, p_kind VARCHAR, p_amount BIGINT, p_key VARCHAR,
    p_actor BIGINT, p_reason VARCHAR, p_credit BOOLEAN, p_daily_at TIMESTAMPTZ,
    p_cooldown INTERVAL, p_max_balance BIGINT, p_lock_timeout_ms INT,
    OUT outcome TEXT, OUT balance BIGINT, OUT version BIGINT, OUT available_at TIMESTAMPTZ,
    OUT seen_guild BIGINT, OUT seen_user BIGINT, OUT seen_kind VARCHAR,
    OUT seen_amount BIGINT)
LANGUAGE plpgsql AS $fn$
DECLARE
    m members%ROWTYPE;
BEGIN
    IF p_lock_timeout_ms > 0 THEN
        PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
    END IF;
    SELECT * INTO m FROM members WHERE guild_id = p_guild AND user_id = p_user FOR UPDATE;
    SELECT l.guild_id, l.user_id, l.kind, l.amount, l.balance_after
        INTO seen_guild, seen_user, seen_kind, seen_amount, balance
        FROM ledger l WHERE l.idempotency_key = p_key;
    IF FOUND THEN
        outcome := 'replayed';
        RETURN;
    END IF;
    IF m.id IS NULL THEN
        IF NOT p_credit THEN  -- a member never seen holds nothing to take
            balance := 0;
            outcome := 'insufficient';
            RETURN;
        END IF;
        INSERT INTO members (guild_id, user_id, display_name, coins, xp, level, version,
                first_seen)
            VALUES (p_guild, p_user, '', 0, 0, 0, 0, now()) ON CONFLICT DO NOTHING;
        SELECT * INTO m FROM members WHERE guild_id = p_guild AND user_id = p_user FOR UPDATE;
    END IF;
    IF p_daily_at IS NOT NULL AND m.last_daily_at IS NOT NULL
            AND m.last_daily_at + p_cooldown > p_daily_at THEN
        available_at := m.last_daily_at + p_cooldown;
        outcome := 'not_ready';
        RETURN;
    END IF;
    IF p_credit AND m.coins > p_max_balance - p_amount THEN
        outcome := 'limit';
        RETURN;
    END IF;
    IF NOT p_credit AND m.coins < p_amount THEN
        balance := m.coins;
        outcome := 'insufficient';
        RETURN;
    END IF;
    UPDATE members SET
            coins = coins + CASE WHEN p_credit THEN p_amount ELSE -p_amount END,
            version = members.version + 1,
            last_daily_at = coalesce(p_daily_at, last_daily_at)
        WHERE id = m.id AND CASE WHEN p_credit THEN coins <= p_max_balance - p_amount
                                 ELSE coins >= p_amount END
        RETURNING coins, members.version INTO balance, version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'bank_move_v1: a locked row changed under its lock';
    END IF;
    INSERT INTO ledger (guild_id, user_id, kind, amount, balance_after, actor_id,
            counterparty_id, reason, idempotency_key, created_at)
        VALUES (p_guild, p_user, p_kind, p_amount, balance, p_actor, NULL, p_reason, p_key,
                now());
    outcome := 'done';
END
$fn$;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP FUNCTION IF EXISTS bank_move_v1;
        DROP FUNCTION IF EXISTS bank_transfer_v1;"""


MODELS_STATE = (
    "eJztXW1z2roS/isavjSdoZmU9DW9c2dIQnu4SUiG0NPeczjjCluAJ7bkY5kQprf//e7KNv"
    "iVYBKIw/GXBFZaWTyrl93VrvyzZguDWXL/hEpWOyI/a5za+CFGr5MadZwFFQkeHViqog41"
    "FIUOpOdS3QPikFqSAclgUndNxzMFx6pNwif2gLnMINiQS7GAYAOfghJJ3Aknr+ukUSeHZH"
    "9/nzjMJaOJaRlkanpjMfHIiDpyHx9oCB2eaPLRI7fd533eGzPFTExJ4McI4gEBagzEHXHF"
    "lIihopyaUhcu8Av3hpge4YwZ8gg+AZeOPaj71S6Ip5roc5thXwjlhiqxzKEHvwDbQyY2HD"
    "LdI3uUONQ1kJ0Sj9nOgPIXUMqNl4RRfUzG9JZBkfSoxz71+Q8HiqCZH9hdyTwyHZsWVOCz"
    "oKM2FgSV6urhPzi78zTqYev4X7Fij3SLmjY8zGLw8/t8T7iKzKhrmUx6xGWeO3tJFCTUI4"
    "Iz4rhCZxJ+sofdNW1GDMH81hAYJawJN/+eMM0TIwZ0F0T25581Bb5mGljBF1Ltr7/gs8kN"
    "dgejCir9rA1NZhnqc6y+R11oKsEMH9md40JnAHvFg6RwTKuhqs0Z71QzM0eV1RQrDGD15V"
    "ed5D44GF7CXePZUd5lj0dO50ZTPYhNS/+Riq6FvMfmqM29z6ouTouBpgtrYvNFfWcGw5vP"
    "GUzuIXXEOHaG4RM8d8LUb7GsYGKHc9gX3KKKL5sIj8GGdGLhtEduvwMLWk3TOpc97brV07"
    "RaakkIOSIzOSDpgCHAAV2VCoARduHVx0bj8PB94+Dw3Ye3b96/f/vh4APUVf1NF73/5Xdm"
    "gZbflMKs/aXd6WGHBKxZ/kqGhF+Kh3pUW0h/gX50GKwugyjX/ZIIcV8mipCwkMVixd0xYS"
    "zAD+ZZCvpc3BcMu4R64/Wb928+HL57Mwd7TlmGcRpPf4NK43kypm4LsFOgtqELlOssBe6C"
    "OwEudLk84Na+NbudIzKlLuzpUK8FjQgPtrVe+6J1+bV3pLYr2Nf7/GtnTpvwOfWsfXJ2RG"
    "5M/abPj5vQFOzEwN26uFLfgr0ZudX3CVffPrc78KShyVlST8kRrU3vNIvxkTeGr6/fLZHj"
    "783uyW/N7t7rdy/jE6YTlDRUUVzUsb1y9YUrxrZLc2jLK1dSY1hdAknOSghrC8EFfTZvuc"
    "sGf8GxvSWuVtsU6PEl5qDxZpVFBqrlLzOqMA6yDpgBIGBPpIE+hRJcV7PBjnMmADcC1v3w"
    "w3Mc9fADjUtuzWq+5rwEftyIrnvNiytlbkj5t6Xwa/ZaWNJQ1FmCupfcD+aNkG/t3m8Ev5"
    "I/LjstBa+Q3shVT1zU6/2BZk+NTjyhcTHVqBFR8kNqiFpM6mD2mNDaGlKPcz6C1IPulkXo"
    "z0TIISZLpaycDeuqi3PmLS6lqKLesoILaq150mv/Dtqbz93nre9X7W7r9Ij4Y9Xo86tm9x"
    "QwBpLvpGFGObQ80wBtFLRbrs+0GzYrstVlsK4lqOT0e1qfQRzvxsEqgDcO8hHHsjjkhq09"
    "aFpE+bc4M7jghedF57KjrCcOc+Kq1Tltd74chS7FPr8OKTKknLbOYR6pmWMwC6aSmjtfOx"
    "H6hMdKzjqX35QNdQNLEC/HnPLN3IcJOdnGsxZ08+rqvI3Co45jmSi4z832ORKG1LTw+/VZ"
    "++oKCfLGdJyyLI6BEND6L7IwJtgqQ2BFQwDPNR42a+ItVHPmCeYMrM7MY5rNpKQjpskCvt"
    "cs1u05Lw42NXce2QUbjJAMn5AQFqM8G9sIVwLSAbBtCtM5Zbtm0vHl5XnMQjpuJ1w9na8X"
    "xy0Y2WpgQyXTy/EABYedRYZxlKUavqkTmfgRclHjP4O98gCUzQOAJ9HDm8hpKBIGVL+Zgu"
    "2rxUoiDiHDzJpmxwHb57Mus2jO+VEk8KQFzTxDT9+vcKCH1GBUKixFQ+SBmS6yG3aSQjns"
    "p0bwbHxSEq+cIJ4Qy+WBPNpccitE8zi4Eb0S3JoRl6kwGDEklOhjykcMA16oCqF5IYnvSS"
    "fC9SNWMqJ3HtZWRnBJIoykCqgoZUAFDrc1jsVibGvtyyXbJZ7mSGwYgruqNTxnKPOZ/7qW"
    "8KObTwKauaXWpJDDIca0izBvyOHA2bQ42DGmCuzVwS7oRavcZ9U5enWOfu8Ja3WAt/UDPG"
    "X0FFU/I0xVQFYh7TPlTYhLIi2Gz8Jl5oifsVnqtCDfb/AMRZDnMwCyS6dzuzU69OC3+152"
    "pHdh7em2T3p+6kC2f2aT7oeWSlypZTgfgpL6MteDn/ayot+hp9JmblmYLCOGKgnlBiSHiT"
    "MD6mfN+BG8Lwn6CqDYz7upzxNvVHLPGLRtzL4xvbRLYjOPwdyiS6iHOUTz9KM6iWQF4QPq"
    "mF5DPWLD/qKaXfSB+j0wpd85bMNnxjQgfJpK5Okg03TMuDqTAsr+PFUJSm1qKJ+KTT19jN"
    "2UqkOS7C2ynF6ulrUTCxHGnqUSeCrPSyk9L1UqyxM6Xqp4/CeFX61Tmcr1/WEJIW+ZvQW1"
    "SKZKIs8luc09jWcME2ysopbtnKk6JCzbIWFMto6xpusizlm5Lkos9qD3T2xHl2wW/wPN6J"
    "JJ4Llb0V9Qvb5mHl4J4Y+DhDEdr1BfZlP7qrqM1r3XtL5i7iv/QgyAcGiOJsE1GlFr9pWf"
    "Vg01YENmbtpwXreRBxzil8WYqezKmj5xXeWFVoRMJTtnM0gybvGwSBcml9s5MTpsrKBMHz"
    "ZylWksSkTpUtOaadTGqVRsAiQ5t2dSvj7YcIzjli3KO0ezzYzk4lzoFwxbBP3tZjF/tLhS"
    "BIfeFUTTZ9gemo1nhKYuhGWIKS8Uwp/i2x62755LBDToXZYYaRimyJm1zvUOafbKFFp3Fb"
    "bYLbMmztriyOav5PFQeRh2hhyWZbjEGasklwJJLlxod9ERnLHi/+f6spMXp5XBnHTEmbpH"
    "/kcsU25s+a/9azjhKvGSDMBGAwNW7uPz/r0pFX2JaBCsmGhCVXzvovk9qaWfnF8eJ51r2M"
    "BxcmJQ6WnKCVH4UrMs1iozKTkLqvi5fKifpxN6lfi56uhh16Sed/RQICttk/7ac2aMmNvi"
    "njurZXhro8X1Zb5aS1VczUeL0UPoryK2uGU2414YekR15U39hFFJLuVyyFwydUFRkMSbCh"
    "Xgk3bWPri1+722uRfpTiQLc3jgL3ItuT/Xh0gLulVdn1te/b+KOSqRMCKb42K2rY59hKmC"
    "voo3yos3+tJtdnpHZAQbhdfnp832+X+PiDpd6PMelF1/bnW1Nt6XG2wlmskjJX6AUlik7t"
    "0t2w266xyvPMXBys7NnQG1cF5odOhl2cnL8E+xVmJYWwygkq6Rpx3lqtyo62IfBEk41PVm"
    "xWOs0syVJNaVxNbvkC4b6ltJfi1BGmTJrLct5EFWDtMdc53lOUxL4jq7UElrtQyvWVBSX+"
    "Yw81PeVn7tmF/9hcQ3VQ3xzVim7+RSroUj5QCTdfL9qk7UyaMKVQxjHzLfNfbwBu/NrAtN"
    "7yqfrkSqQOXbKpEwKt9WCaA3TOlYtHi4b5JvB6+GWUlNO1iiph2k1bQwULmIARiw7EyUwN"
    "Zje4sB7tev0H5AzFga8OUxezsF+KMFwdyChpz5hr9lozfCtDOIbv1aRVd6mmQsA/rltnSc"
    "s7Kly25Lp2L6goyawk6UFHOV416eiKMcWd856wp6zllJuWxSLol3rBcchnfZcCKpVctwky"
    "Wr1Jf5y1y/0soOs3nIl2JkBhkKl0wpV1dQBd6tG+Z46hVOrnp1vctgAEoPyLMsj9kDW8R7"
    "s5pAQZsxeKc9kQDIvNKeOuUllHRb118vWnW8IHzoChsoxsSxTB2nEJF+dNlLYk+AZ4Q3aE"
    "FLfa6agg5OoQlQKDkx/UcER8hkTCUZuWLKiTTh+xH0D4MTDHzJvSnVbV7o4vN/myR0BBPi"
    "4TeTV8cg2zkGqbx6pdSjg8lXDPsIUwX92tBzxgxWcNQveCrg14/1qM5h/yG2Y0k0zW9scO"
    "0rRVlKZqR0qX45ZQNNhpH7K+qYwIM3xEhhsfCdL3sU9KsRf2XyF9J/vQvesTpX2tSFpqhG"
    "4Y2mhAvSZYaZeT77aG2j3ok3wYIWhXRQYg1hf1K6YdAuUEd49Iv67EgIgwhUGH8s3mz9Q2"
    "mPDpWg9a6TMhF5R/Y9ORJRKWiKbbZuokRBhXNXlcyPqwQSf8wPJP747j4NEwvSSOen6Ib1"
    "t5+V+zReg43k35bohfXPSBRl2lXL7sBpMtfUx1lbalCydDulizr3baT5gn3kl6L9U+KIHn"
    "j8lr/S5x7H5W+r+Ydxpcr/WXNzbbx9u8LuCrVyt1dVlkhUcDKO65e839vJOq3fBXQ3FH/C"
    "PZaVB5WvsERYKp2loM7ypJvZr/8DmIw+4g=="
)
