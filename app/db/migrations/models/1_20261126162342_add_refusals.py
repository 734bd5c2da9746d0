from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "refusals" (
    "idempotency_key" VARCHAR(120) NOT NULL PRIMARY KEY,
    "guild_id" BIGINT NOT NULL,
    "balance" BIGINT NOT NULL,
    "needed" BIGINT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "refusals" IS 'A transfer refused for want of coins, kept under its request key.';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "refusals";"""


MODELS_STATE = (
    "eJztXG1T4zgS/isqf9nZqgwFAYY59uqqAhNmszMEKoTdud1suYStBBeO5JVsQmqO/34t2Y"
    "7fTWJIMBl/oUhLLctP66X7UcvftSkziS12TrEg2jH6rlE8lf8k5C2kYceJpFLg4htbVTSg"
    "hpLgG+FybLggHGNbEBCZRBjcclyLUVm1g6g3vSGcmEg2xLEsQLKBX4ISgbhH0V4LtVtoH+"
    "3s7CCHcDTxLNtEM8u9ZZ6LJtgRO/KBJjPgiRadrKFtj1r/eER32YS4t4TDE/76S1N1dcuU"
    "Ffw2tb//hv8tapIHAAEqfdfGFrFN9X+ivos5NJVShn/Jg8OJENBZpSNFoQkUsvpC8UE1M3"
    "dUmaZUAW/147GFCh8coMF4hWfHdcseLzWdO131IDGK/EcquR7qnliTHnXPVF1pxRvdYLY3"
    "pVF9Zw7WoAsFi7pSOiFUdobIJ7jcI+pdbDsYh+GQ8w0XVfFtE9MxyRh7thylUtvvQCTTdL"
    "1/MdSvukNd1zIjONSIDbxAZACGAAd0VSgAJrIL7//Vbu/vH7V39z98PDw4Ojr8uPsR6qr+"
    "ZouOHv3ORGj5TSnMep97/aHsEIMp5k88KXhUOtjFemT9CP34MFjeBnGtpy0R4l5milAQ2S"
    "JaILbMGBH4wTzLQF+Ie6SwTai39w6ODj7ufzhYgL2QlGGcxRN2FtmDDJ6nt5h3ATsFag+6"
    "gKlBMuBG2ilwocv1AVf7ozPoH6MZ5nREoV4XGmEuGdFh77x7cT2ERcyaEtioRvS6v5B5dC"
    "H90jv9cozuLONuRE860NQNhpaG3fNL9cslU0dJrvvqt0fVr7NeH540tihJb6sFpp3iB90m"
    "dOLews+9DyV2/L0zOP21M3i39+Hn5ITpByVtVZQ0dWKvXH7hSqht0xza8MqV9hiWt0Basz"
    "FCZSNwgkXRcpcPfqSxuSVO09YFenKJ2W0fLLPIQLXiZUYVJkE2ADMARMduFuhPUCLX1Xyw"
    "k5opwM1AdSf85y2OenhB84Lac833nEvglxvR1bBzfqnCDSH+sRV+nWFXlrSVdJ6SvkvvB4"
    "tG0B+94a9I/kR/XvS7Cl4m3AlXT4zqDf+UYY+GPZfplM10bMac/FAaopawOoQ9FrRWwepJ"
    "zRewetDduhj9jRg5xKTUyuAIuqSqu7hQ3uBSKl3Ue7Ligqp1Toe938F787VHtPvtsjfofj"
    "pG/lg1R/SyM/gEGIPIwdxklJj18PLMKbylDZ3mJM/NYMwmmObPw7Rqyko3oLtVk+/k4uJr"
    "Yt6d9FIORP/6/KQLBlD4QyXLLfArLBNiAIgpqDHX78h8FQcjR7XS9Ejj/rpMTXKUt3eXGe"
    "bt3eJxLsseFSM2vouxMlJwg407iO1MPVES25hMyxU5UyFQO/syIDYuiGNjfG0XmnmDHsdj"
    "ON5Caeh5SOhYmxWBmS2atqdpCaZ4ol5JPls+KY1XAfcdYlnOf+sLyy1BgjsOoeZ7Bq4V4s"
    "Rg3ERsjDAybjGdEOQy+T+0+ZNAvkePGEdqP8ohvZ/XVg7JnaKzG2K3lsSuHG4VwvOEWqXY"
    "vGZb5uuE5uMQ3GU3zoVCnbnHqjvmi/uFDJq5x7ZX4LznQ5xQ2kaY18SAUDJbHeyEUgP28m"
    "Czooi0AGe28SC04fMaPq9OVM8yfJ7ywFf1hWJKzSnFSq5QJrRNWiJrhjPGiTWhX8g8Q7oV"
    "B7Fv0ARFASyIOZ4tgqj40IN3hzcmPlkzgIkw6J0O/XyafLJgnbHwZ5n4cUVcF17SHwipgD"
    "hZoVUWFftJJCJe98nI+JLw9346FkA4tiZekMSFqYkgPlWR7Hs/SwJqeNQlPBsSV23kGbFw"
    "XdJsmsBYMzzOFT+pBCu4WhnFDfpcBrOo2Izjtd9ewu3abxc6XbIoxeJjy57reCqn0moTIK"
    "25uW14b3d3C2ZBZIMHR59aObkChdBHChsE/XC9mL9YopkEBz+siKavsDk0228ITYMx22Qz"
    "quecbZSBmtTbHLYf1rw6vBi24HfZbKJLtp8Su0q2Vla9oYWrrsI2uSe251Q2R75+Y4/n2s"
    "Oc5tihLLsgqVgtt6DSwrOQvNnsAsr0h/gIzlnxf7u66BfRnTnKaSrOMlz0P2RbYm3Lv/bv"
    "sUdVuji6gRgNAlixI5/3n3W56CWmkWAlTBO64u/OO9/SXvrp14uTNL0mGzhJTwwsXF2REC"
    "vfUchT3dzG/Fb25YaGLoZ6e2lozzErWj2p2Vi9LlbPyTNdJCQtmdy1Tr72KzEnhHepy+da"
    "DlsbL26VcbW2qrgcR3tBCZJ8FZqyezIl1EUyqQiE2FBs6i8IA0aYijHhaMbBURDInTHE2S"
    "zn0u6zW3uatS28F+sJEqbCwN8nrsP6EOlBt5rbsPX1/5vbsDUyRmxzjGbb8tjHlBroK0N/"
    "B2+bfxTy9D2IULfOST7a50GnPzxGE9go3BH91Ol9/e8xUqcLIzqEsquz7kDvyeuvwVaiWz"
    "RW4t+rDYvUNdq6XYitcrzyGgcrWzd3brAt54WOx25enFyGf0a1MUNlM4BLWiHdOa7V0KhV"
    "sQ+SJBzM3fnqWVZZ5cYSVS2x8SvhdUN9IzmkNbggV7PobT035BrCdDn03yZ1VkSY1oQ6Oy"
    "fq9CKHNQtKWmWE2VTVWfqjd371nwRyOBtbNkGWT3IpauFYEWCihb5dtpA6eVSpimHuQ+6X"
    "7p7f4JOftwtD7/T37Rpuq+G2arxYNtzWjwW9aQnHxqun+6b1tvCG1VJu2m6Jm7abddPCRO"
    "VVAsBAZWuyBDae27sa4H79Bu1n5IxlAS/P2dsqwF8sCeYePOTcD3aWjd6Y0tYguvGvE3Dh"
    "6oKQHOjLY+mkZhNL1z2WzuT0BTdqViZRMsrNl+3qk3FUYOsHp6qhF5qNletm5ZqwYwMy9g"
    "S2tRx6LCxqlfFj3K+0NEG2SPFSisREY8bRDMt0sHHIZt0Rx0UeDCuOLFd+zgoGnHBBPM9j"
    "yJ7Z4oiOaAckMkaUGvLisAAgFpXeqVNdhNGge3V93m3J72qNOZuCxPQc2zLklEHCzyb7GU"
    "090JlY90S2NKKqKejgDJoAB5Iiy39EcGSMbrFAE85mFAkLfh9D/2QygimgliVk9pui9Px3"
    "EwhPYAI8/4NezbHHZo49Ghavln5zMPlWwz6m1EBfGXpKiJn7DdgS5COdBvjquR3NuesPEi"
    "vWxLPsEG4Zt3mOZVBS6lfiqM5TXmWxnV/4o6c/ygHnM3nBYqenkCcsdjiLWcJaJSZXdDXb"
    "h4dLuJpQq9DVVGWpDEon5xyhGOGg+haiu6aDMQrhT84mWnzZOaay+SvOr0PBvNhl5lfdzB"
    "7/Dxo8aBk="
)
