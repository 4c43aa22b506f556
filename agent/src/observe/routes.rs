//! Observe stage, kernel side: routes, links and addresses over rtnetlink.
