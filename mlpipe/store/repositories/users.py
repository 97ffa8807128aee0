"""Users of the web server and their API tokens: rows only (hashing lives in ``mlpipe.web``)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mlpipe.errors import UserError
from mlpipe.store.database import Database
from mlpipe.store.entities import UserRecord
from mlpipe.store.repositories.common import API_TOKEN, USER, record_of
from mlpipe.store.repositories.common import now as utc_now


class UserRepository(Database):
    """Users (name, role, password hash) and the SHA-256 digests of their API tokens."""

    def create_user(self, name: str, role: str, password_hash: str) -> UserRecord:
        """Insert a user; ``UserError`` if the name is taken."""
        record = UserRecord(name, role, password_hash, utc_now())
        try:
            with self.writer.begin() as conn:
                conn.execute(insert(USER).values(name=name, role=role,
                                                 password_hash=password_hash,
                                                 created_at=record.created_at))
        except IntegrityError:
            raise UserError(f"user {name!r} exists already; delete it first or pick another "
                            "name", name=name) from None
        return record

    def get_user(self, name: str) -> UserRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(USER).where(USER.c.name == name)).first()
        return record_of(UserRecord, row) if row else None

    def list_users(self) -> list[UserRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(USER).order_by(USER.c.name)).all()
        return [record_of(UserRecord, r) for r in rows]

    def set_password_hash(self, name: str, password_hash: str) -> bool:
        with self.writer.begin() as conn:
            return bool(conn.execute(update(USER).where(USER.c.name == name)
                                     .values(password_hash=password_hash)).rowcount)

    def delete_user(self, name: str) -> bool:
        """Remove a user and its tokens; False if there was none."""
        with self.writer.begin() as conn:
            conn.execute(delete(API_TOKEN).where(API_TOKEN.c.user_name == name))
            return bool(conn.execute(delete(USER).where(USER.c.name == name)).rowcount)

    def add_token(self, name: str, token_sha256: str) -> None:
        """Store a new token's digest for user ``name``."""
        with self.writer.begin() as conn:
            conn.execute(insert(API_TOKEN).values(token_sha256=token_sha256, user_name=name,
                                                  created_at=utc_now()))

    def user_of_token(self, token_sha256: str) -> UserRecord | None:
        """The user a token digest belongs to, or None."""
        query = (select(USER).join(API_TOKEN, API_TOKEN.c.user_name == USER.c.name)
                 .where(API_TOKEN.c.token_sha256 == token_sha256))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return record_of(UserRecord, row) if row else None
