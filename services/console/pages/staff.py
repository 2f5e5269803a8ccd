"""The shop's staff (the owner's page): members and roles, invitations, removal; and the
page where an invited person accepts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from services.console import handlers, staff
from services.console.adapters import accounts, invitations
from services.console.adapters.upstream import UpstreamError
from services.console.auth import NotFound, ShopAccess, require
from services.console.context import console_of
from services.console.domain.roles import Capability, Role
from services.console.rendering import render

router = APIRouter()

Owner = Annotated[ShopAccess, Depends(require(Capability.MANAGE_STAFF))]
MemberId = Annotated[str, Path(max_length=64)]
RoleField = Annotated[Role, Form()]


def change_of(request: Request, access: ShopAccess) -> staff.StaffChange:
    return staff.StaffChange(access.shop, access.user, console_of(request).now())


async def _page(
    request: Request, access: ShopAccess, *, error: str | None = None, status_code: int = 200
) -> Response:
    console = console_of(request)
    async with console.pool.acquire() as conn:
        members = await accounts.members(conn, access.shop)
        pending = await invitations.open_invitations(conn, access.shop, console.now())
    context = {
        "access": access,
        "members": members,
        "invitations": pending,
        "roles": list(Role),
        "error": error,
    }
    return render(request, "staff.html", context, status_code=status_code)


@router.get("/shops/{shop}/staff")
async def staff_page(request: Request, access: Owner) -> Response:
    return await _page(request, access)


@router.post("/shops/{shop}/staff/invitations")
async def invite(
    request: Request,
    access: Owner,
    email: Annotated[str, Form(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")],
    role: RoleField,
    language: Annotated[str, Form(pattern="^(vi|en)$")] = "vi",
) -> Response:
    console = console_of(request)
    try:
        shop_name = str((await access.api.shop())["name"])
    except UpstreamError:
        shop_name = access.shop
    await staff.invite_staff(
        console.pool,
        change_of(request, access),
        shop_name=shop_name,
        email=email,
        role=role,
        locale=language,
        public_url=console.settings.console_public_url,
        ttl=console.settings.invitation_ttl,
    )
    return RedirectResponse(f"/shops/{access.shop}/staff", status_code=303)


@router.post("/shops/{shop}/staff/invitations/{invitation_id}/revoke")
async def revoke(request: Request, access: Owner, invitation_id: MemberId) -> Response:
    if not await staff.revoke_invitation(
        console_of(request).pool, change_of(request, access), invitation_id
    ):
        raise NotFound
    return RedirectResponse(f"/shops/{access.shop}/staff", status_code=303)


@router.post("/shops/{shop}/staff/{user_id}/role")
async def change_role(
    request: Request, access: Owner, user_id: MemberId, role: RoleField
) -> Response:
    try:
        await staff.change_role(console_of(request).pool, change_of(request, access), user_id, role)
    except staff.StaffRefused as refused:
        return await _refused(request, access, refused)
    return RedirectResponse(f"/shops/{access.shop}/staff", status_code=303)


@router.get("/shops/{shop}/staff/{user_id}/remove")
async def confirm_removal(request: Request, access: Owner, user_id: MemberId) -> Response:
    """Removing is a second step, on a page of its own: no script, no window.confirm."""
    async with console_of(request).pool.acquire() as conn:
        member = next(
            (m for m in await accounts.members(conn, access.shop) if m.user_id == user_id), None
        )
    if member is None:
        raise NotFound
    return render(request, "staff_remove.html", {"access": access, "member": member})


@router.post("/shops/{shop}/staff/{user_id}/remove")
async def remove(request: Request, access: Owner, user_id: MemberId) -> Response:
    try:
        await staff.remove_member(console_of(request).pool, change_of(request, access), user_id)
    except staff.StaffRefused as refused:
        return await _refused(request, access, refused)
    return RedirectResponse(f"/shops/{access.shop}/staff", status_code=303)


async def _refused(request: Request, access: ShopAccess, refused: staff.StaffRefused) -> Response:
    if isinstance(refused, staff.LastOwner):
        return await _page(request, access, error="last_owner", status_code=409)
    raise NotFound


@router.get("/invitations/{token}")
async def invitation_page(
    request: Request, token: Annotated[str, Path(max_length=100)]
) -> Response:
    console = console_of(request)
    async with console.pool.acquire() as conn:
        invitation = await invitations.usable(conn, handlers.session_key(token), console.now())
        account = (
            None if invitation is None else await accounts.user_by_email(conn, invitation.email)
        )
    if invitation is None:
        return render(request, "invitation.html", {"usable": False}, status_code=404)
    context = {"usable": True, "invitation": invitation, "has_account": account is not None}
    return render(request, "invitation.html", context)


@router.post("/invitations/{token}")
async def accept(
    request: Request,
    token: Annotated[str, Path(max_length=100)],
    password: Annotated[str, Form(max_length=1024)],
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The link's secret is the proof: there is no session yet to hold a CSRF token, and a
    forged post could only accept an invitation for its own holder."""
    console = console_of(request)
    try:
        await staff.accept_invitation(
            console.pool,
            passwords=console.passwords,
            token=token,
            name=name,
            password=password,
            now=console.now(),
        )
    except staff.InvitationUnusable:
        return render(request, "invitation.html", {"usable": False}, status_code=404)
    except handlers.AccountRefused:
        async with console.pool.acquire() as conn:
            invitation = await invitations.usable(conn, handlers.session_key(token), console.now())
            account = (
                None if invitation is None else await accounts.user_by_email(conn, invitation.email)
            )
        context = {
            "usable": invitation is not None,
            "invitation": invitation,
            "has_account": account is not None,
            "error": True,
        }
        return render(request, "invitation.html", context, status_code=422)
    return RedirectResponse("/sign-in", status_code=303)
