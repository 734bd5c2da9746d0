from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


# Generated (the web_sessions table), then the case search's text index added by hand
# (app/domain/case_search.py). Both extensions are "trusted": the database's owner may create
# them without superuser rights.
async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "web_sessions" (
    "key" VARCHAR(96) NOT NULL PRIMARY KEY,
    "data" JSONB NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "web_sessions_expiry_idx" ON "web_sessions" ("expires_at");
COMMENT ON TABLE "web_sessions" IS 'A web console record (a sign-in''s state, a session) when there is no Redis.';
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE EXTENSION IF NOT EXISTS btree_gin;
        CREATE INDEX IF NOT EXISTS "cases_reason_trgm_idx"
            ON "cases" USING gin ("guild_id", "reason" gin_trgm_ops);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "cases_reason_trgm_idx";
        DROP TABLE IF EXISTS "web_sessions";"""


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
