"""API keys and project roles."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field

from loopml.api import auth
from loopml.core.enums import Role
from loopml.core.errors import Conflict
from loopml.core.schemas import ApiKey, NewApiKey
from loopml.home import Home
from loopml.store import keys

router = APIRouter(prefix="/keys", tags=["keys"])


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    admin: bool = Field(default=False, description="Admin in every project.")
    roles: dict[str, Role] = Field(default_factory=dict, description="Role per project name.")


class RoleGrant(BaseModel):
    role: Role


@router.get("/me", response_model=ApiKey)
def who_am_i(key: ApiKey = Depends(auth.any_key)) -> ApiKey:
    return key


@router.get("", response_model=list[ApiKey], dependencies=[Depends(auth.admin)])
def list_keys(include_revoked: bool = True, home: Home = Depends(auth.get_home)) -> list[ApiKey]:
    with home.db.session() as s:
        return keys.list_all(s, include_revoked=include_revoked)


@router.post(
    "",
    response_model=NewApiKey,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(auth.admin)],
)
def create_key(body: KeyCreate, home: Home = Depends(auth.get_home)) -> NewApiKey:
    """Create a key. The secret is in this response only; it cannot be shown again."""
    with home.db.session() as s:
        return keys.create(
            s, body.name, global_role=Role.admin if body.admin else None, project_roles=body.roles
        )


@router.post("/{key_id}/revoke", response_model=ApiKey, dependencies=[Depends(auth.admin)])
def revoke_key(key_id: str, home: Home = Depends(auth.get_home)) -> ApiKey:
    with home.db.session() as s:
        key = keys.get(s, key_id)
        if key.global_role is Role.admin and not key.revoked_at and keys.count_admins(s) <= 1:
            raise Conflict(
                "this is the last admin key; create another admin key before revoking it",
                field="key_id",
            )
        return keys.revoke(s, key_id)


@router.put(
    "/{key_id}/roles/{project}", response_model=ApiKey, dependencies=[Depends(auth.project_admin)]
)
def grant_role(
    key_id: str, project: str, body: RoleGrant, home: Home = Depends(auth.get_home)
) -> ApiKey:
    """Give a key a role in a project (project admins may do this for their project)."""
    with home.db.session() as s:
        return keys.set_role(s, key_id, project, body.role)


@router.delete(
    "/{key_id}/roles/{project}", response_model=ApiKey, dependencies=[Depends(auth.project_admin)]
)
def remove_role(key_id: str, project: str, home: Home = Depends(auth.get_home)) -> ApiKey:
    with home.db.session() as s:
        return keys.set_role(s, key_id, project, None)
