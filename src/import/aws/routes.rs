//! Route tables: the `local` route implicit, instances as `instance:NAME`, blackholes kept, and
//! targets tcplab has no model of mapped to the stand-in.

use std::collections::{HashMap, HashSet};

use super::shapes::AwsRoute;
use super::values::parse_cidr;
use super::{Mapper, Names, STAND_IN, name_tag, origin};
use crate::import::ImportError;
use crate::spec::{Route, RouteTable, RouteTarget};

impl Mapper {
    /// The VPC's route tables, and each subnet's table name (the main table where none is
    /// associated).
    pub(super) fn map_tables(
        &mut self,
        other_vpcs: &mut usize,
    ) -> Result<(Vec<RouteTable>, HashMap<String, String>), ImportError> {
        let mut names = Names::default();
        let mut out = Vec::new();
        let mut table_of = HashMap::new();
        let mut main = None;
        let mut seen = HashSet::new();
        for (file, t) in std::mem::take(&mut self.input.tables) {
            if t.vpc_id != self.vpc.vpc_id {
                *other_vpcs += 1;
                continue;
            }
            if t.route_table_id.is_empty() {
                return Err(self.invalid(file, "a route table without a RouteTableId".into()));
            }
            if !seen.insert(t.route_table_id.clone()) {
                continue;
            }
            let id = t.route_table_id.clone();
            let name = names.claim(name_tag(&t.tags), &id, "rtb");
            let mut routes = Vec::new();
            for r in &t.routes {
                if let Some((route, comment)) = self.route(file, &id, r)? {
                    if routes
                        .iter()
                        .any(|x: &Route| x.destination == route.destination)
                    {
                        return Err(self.invalid(
                            file,
                            format!(
                                "route table {id}: two routes to {} (AWS allows one)",
                                route.destination
                            ),
                        ));
                    }
                    self.origins.routes.push(comment);
                    routes.push(route);
                }
            }
            let mut is_main = false;
            for a in &t.associations {
                if a.association_state
                    .as_ref()
                    .is_some_and(|s| matches!(s.state.as_str(), "disassociated" | "failed"))
                {
                    continue;
                }
                if a.main {
                    is_main = true;
                    main = Some(name.clone());
                } else if let Some(s) = &a.subnet_id {
                    if self.subnets.contains_key(s) {
                        table_of.insert(s.clone(), name.clone());
                    }
                } else if let Some(g) = &a.gateway_id {
                    self.gap(
                        &id,
                        format!("edge association with gateway {g}"),
                        "left out: gateways are not modelled",
                    );
                }
            }
            let mut comment = origin(&id, name_tag(&t.tags));
            if is_main {
                comment.push_str(" (the VPC's main route table)");
            }
            self.origins.tables.push(comment);
            out.push(RouteTable { name, routes });
        }
        if let Some(m) = main {
            for id in self.subnets.keys() {
                table_of.entry(id.clone()).or_insert_with(|| m.clone());
            }
        }
        Ok((out, table_of))
    }

    /// One route and the comment above it; `None` for the `local` route, and for a route
    /// tcplab cannot model (listed).
    pub(super) fn route(
        &mut self,
        file: usize,
        id: &str,
        r: &AwsRoute,
    ) -> Result<Option<(Route, String)>, ImportError> {
        if r.gateway_id.as_deref() == Some("local") {
            return Ok(None);
        }
        let target = target_of(r);
        let destination = match (
            &r.destination_cidr_block,
            &r.destination_ipv6_cidr_block,
            &r.destination_prefix_list_id,
        ) {
            (Some(c), _, _) => parse_cidr(c)
                .map_err(|m| self.invalid(file, format!("route table {id}: destination {m}")))?,
            (None, Some(v6), _) => {
                self.gap(
                    id,
                    format!("route to IPv6 {v6} via {target}"),
                    "left out (tcplab is IPv4 only)",
                );
                return Ok(None);
            }
            (None, None, Some(pl)) => {
                self.gap(
                    id,
                    format!("route to prefix list {pl} via {target}"),
                    "left out (prefix lists are not modelled)",
                );
                return Ok(None);
            }
            (None, None, None) => {
                return Err(self.invalid(
                    file,
                    format!("route table {id}: a route without a destination"),
                ));
            }
        };
        if self.cidr.contains(&destination) && destination.prefix_len() <= self.cidr.prefix_len() {
            self.gap(
                id,
                format!("route to {destination} via {target}"),
                "left out: the VPC's own range is the implicit local route",
            );
            return Ok(None);
        }
        if r.state.as_deref() == Some("blackhole") {
            return Ok(Some((
                Route {
                    destination,
                    target: RouteTarget::Blackhole,
                },
                format!("{target}: state blackhole (its target is gone)"),
            )));
        }
        let host = [&r.instance_id, &r.network_interface_id]
            .into_iter()
            .flatten()
            .find_map(|i| self.hosts.get(i))
            .cloned();
        if let Some(h) = host {
            return Ok(Some((
                Route {
                    destination,
                    target: RouteTarget::Instance(h),
                },
                target,
            )));
        }
        self.gap(
            id,
            format!("route to {destination} via {target}"),
            format!("stand-in `{STAND_IN}` (no model of this target)"),
        );
        Ok(Some((
            Route {
                destination,
                target: STAND_IN,
            },
            format!("{target}: not modelled, stand-in `{STAND_IN}`"),
        )))
    }
}

/// A route's target as AWS names it, e.g. `internet gateway igw-0123`.
fn target_of(r: &AwsRoute) -> String {
    let kinds: [(&Option<String>, &str); 10] = [
        (&r.instance_id, "instance"),
        (&r.network_interface_id, "network interface"),
        (&r.nat_gateway_id, "NAT gateway"),
        (&r.transit_gateway_id, "transit gateway"),
        (&r.vpc_peering_connection_id, "peering connection"),
        (&r.carrier_gateway_id, "carrier gateway"),
        (&r.local_gateway_id, "local gateway"),
        (
            &r.egress_only_internet_gateway_id,
            "egress-only internet gateway",
        ),
        (&r.core_network_arn, "core network"),
        (&r.gateway_id, "gateway"),
    ];
    for (id, kind) in kinds {
        if let Some(id) = id {
            let kind = match id.split('-').next() {
                Some("igw") => "internet gateway",
                Some("vgw") => "virtual private gateway",
                Some("vpce") => "VPC endpoint",
                _ => kind,
            };
            return format!("{kind} {}", crate::escape::line(id));
        }
    }
    "no target".into()
}
