//! The request mix: `reserve=80,purchase=10,read=10` (and `health`, the HTTP ceiling).

use std::str::FromStr;

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `POST /api/events/{id}/reserve` of one of the run's events.
    Reserve,
    /// `POST /api/reservations/{id}/purchase` of one of this connection's own holds.
    Purchase,
    /// `GET /api/events/{id}` of one of the run's events.
    Read,
    /// `GET /health`: no store, the server's HTTP ceiling.
    Health,
    /// `POST /api/events/{id}/reserve` of the best two seats together.
    Best,
    /// `POST /api/events/{id}/reserve` of two random seats by label.
    Seat,
    /// `GET /api/events/{id}/seats`, gzip accepted.
    SeatMap,
    /// `GET /api/events/{id}/seats` with the `ETag` this connection saw last.
    SeatMap304,
}

impl Op {
    pub const ALL: [Self; 8] = [
        Self::Reserve,
        Self::Purchase,
        Self::Read,
        Self::Health,
        Self::Best,
        Self::Seat,
        Self::SeatMap,
        Self::SeatMap304,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Reserve => "reserve",
            Self::Purchase => "purchase",
            Self::Read => "read",
            Self::Health => "health",
            Self::Best => "best",
            Self::Seat => "seat",
            Self::SeatMap => "seatmap",
            Self::SeatMap304 => "seatmap304",
        }
    }

    /// Whether it holds seats (and needs --seats).
    pub fn seated(self) -> bool {
        matches!(
            self,
            Self::Best | Self::Seat | Self::SeatMap | Self::SeatMap304
        )
    }
}

/// Weights of each kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 8],
}

impl Mix {
    /// The kind of request for a roll in `0..total()`.
    pub fn pick(self, roll: u32) -> Op {
        let mut roll = roll;
        for (op, weight) in Op::ALL.into_iter().zip(self.weights) {
            if roll < weight {
                return op;
            }
            roll -= weight;
        }
        Op::Health
    }

    pub fn total(self) -> u32 {
        self.weights.iter().sum()
    }

    pub fn weight(self, op: Op) -> u32 {
        self.weights[op as usize]
    }

    /// Whether any request of the mix needs seats.
    pub fn seated(self) -> bool {
        Op::ALL
            .into_iter()
            .any(|op| op.seated() && self.weight(op) > 0)
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut weights = [0; 8];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("--mix: {part:?} is not NAME=WEIGHT"))?;
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == name.trim())
                .ok_or_else(|| {
                    format!(
                        "--mix: unknown request {name:?} (reserve, purchase, read, health, best, \
                         seat, seatmap, seatmap304)"
                    )
                })?;
            weights[op as usize] = weight
                .trim()
                .parse()
                .map_err(|_| format!("--mix: {weight:?} is not a whole number"))?;
        }
        let mix = Self { weights };
        if mix.total() == 0 {
            return Err("--mix: every weight is 0".into());
        }
        Ok(mix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_weights_and_picks_by_them() {
        let mix: Mix = "reserve=2, read=1"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((mix.total(), mix.weight(Op::Purchase)), (3, 0));
        assert_eq!(
            [mix.pick(0), mix.pick(1), mix.pick(2)],
            [Op::Reserve, Op::Reserve, Op::Read]
        );
        assert!("reserve".parse::<Mix>().is_err());
        assert!("sell=1".parse::<Mix>().is_err());
        let health: Mix = "health=1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(health.pick(0), Op::Health);
        assert!("reserve=0".parse::<Mix>().is_err());
    }
}
